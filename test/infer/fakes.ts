// Fake StepModels for the inference tests. The carried state is the row's whole token history, and the
// logits of a position are a pure function of the history up to it, so a model fed in one call and one
// fed in pieces (carrying the state) must give the same logits — and forgetting the state cannot.
import { createTokenizer, PAD_ID, type Tokenizer } from '../../src/tokenizer/index.ts'
import type { Manifest, State, StepModel } from '../../src/infer/types.ts'

export type LogitsFn = (history: number[]) => number[]

export interface FakeModel extends StepModel {
  calls: { ids: number[][]; state: State }[]
}

export function fakeManifest(vocabSize: number, maxSeqLen: number | null): Manifest {
  return {
    format: 'lmp-onnx',
    version: 1,
    architecture: maxSeqLen === null ? 'fake-recurrent' : 'fake-transformer',
    model: 'model.onnx',
    tokenizer: 'tokenizer.json',
    vocabSize,
    specialTokens: { bos: 0, eos: 1, pad: 2, unk: 3 },
    opset: 17,
    irVersion: 8,
    maxSeqLen,
    inputs: [],
    outputs: [],
    state: [{ input: 'history_in', output: 'history_out', shape: ['batch', 'past'], concatAxis: 1 }],
    sha256: '',
    config: {},
  }
}

/**
 * A model whose state is the token history of each row ([batch, past], as a KV cache grows). With a
 * maxSeqLen it refuses to see more than that many positions, as a Transformer with fixed positions.
 */
export function fakeModel(vocabSize: number, logitsFor: LogitsFn, maxSeqLen: number | null = null): FakeModel {
  const calls: FakeModel['calls'] = []
  return {
    manifest: fakeManifest(vocabSize, maxSeqLen),
    calls,
    initState: (batch) => [{ data: new Float32Array(0), dims: [batch, 0] }],
    async forward(ids, state) {
      calls.push({ ids: ids.map((r) => r.slice()), state })
      const batch = ids.length
      const seq = ids[0].length
      if (ids.some((r) => r.length !== seq)) throw new Error('rows of different lengths')
      const [stateBatch, past] = state[0].dims
      if (stateBatch !== batch) throw new Error(`state batch ${stateBatch} != ${batch}`)
      if (maxSeqLen !== null && past + seq > maxSeqLen) throw new Error(`context ${past + seq} > ${maxSeqLen}`)
      const logits = new Float32Array(batch * seq * vocabSize)
      const next = new Float32Array(batch * (past + seq))
      for (let b = 0; b < batch; b++) {
        const history = Array.from(state[0].data.subarray(b * past, (b + 1) * past))
        for (let s = 0; s < seq; s++) {
          history.push(ids[b][s])
          logits.set(logitsFor(history), (b * seq + s) * vocabSize)
        }
        next.set(history, b * (past + seq))
      }
      return { logits, state: [{ data: next, dims: [batch, past + seq] }] }
    },
  }
}

/** Logits that depend on the last token, the position and the whole history (smooth, all distinct). */
export function historyLogits(vocabSize: number): LogitsFn {
  return (h) => {
    const last = h[h.length - 1]
    const sum = h.reduce((a, b) => a + b, 0)
    return Array.from({ length: vocabSize }, (_, v) => 2 * Math.sin(v * 1.37 + last * 0.71 + h.length * 0.29 + sum * 0.013))
  }
}

/** A character tokenizer over a small alphabet. */
export function charTokenizer(texts = ['hello world, if you add 1 to 2 you get 3 .', 'the quick brown fox jumps over the lazy dog!']): Tokenizer {
  const tk = createTokenizer('character')
  tk.buildVocab(texts)
  return tk
}

/**
 * A model that "writes" `script` (token ids) after the prompt: once `promptLength` tokens were fed, the
 * logits favour script[k] at the k-th new position, then `after` (EOS by default).
 */
export function scriptedLogits(vocabSize: number, promptLength: number, script: number[], after = 1, pad = PAD_ID): LogitsFn {
  return (h) => {
    const k = h.length - promptLength
    const want = k < script.length ? script[k] : after
    return Array.from({ length: vocabSize }, (_, v) => (v === want ? 10 : v === pad ? 20 : 0))
  }
}

/** The id of each character of `text` (enc would strip a leading or trailing space). */
export function charIds(tk: Tokenizer, text: string): number[] {
  const space = tk.enc('a b')[2]
  return [...text].map((c) => (c === ' ' ? space : tk.enc(c)[1]))
}
