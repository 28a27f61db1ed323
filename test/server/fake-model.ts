// A tiny deterministic StepModel and a real character tokenizer, so the HTTP layer can be tested
// without an exported ONNX model. The "model" favours one next token: BOS → 'a', 'a' → 'b', …, 'h' → EOS.
import type { Manifest, State, StepModel } from '../../src/infer/types.ts'
import { createTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts'
import type { ServedModel } from '../../server/models.ts'

export const LETTERS = 'abcdefgh'
/** The favoured token's logit; every other token has logit 0. */
export const PEAK = 5

export function fakeTokenizer(): Tokenizer {
  const tk = createTokenizer('character')
  tk.buildVocab([LETTERS]) // every letter appears once: ids 4..11 in order
  return tk
}

export function favoured(id: number, vocab: number): number {
  if (id === 0) return 4 // BOS → 'a'
  if (id >= 4 && id < vocab - 1) return id + 1
  return 1 // 'h' (and anything else) → EOS
}

export function fakeManifest(vocabSize: number): Manifest {
  return {
    format: 'lmp-onnx', version: 1, architecture: 'fake', model: 'model.onnx', tokenizer: 'tokenizer.json',
    vocabSize, specialTokens: { bos: 0, eos: 1, pad: 2, unk: 3 }, opset: 17, irVersion: 8, maxSeqLen: null,
    inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 'sequence', vocabSize] }],
    state: [{ input: 'h_in', output: 'h_out', shape: ['batch', 1] }], sha256: '0'.repeat(64), config: {},
  }
}

/** delayMs slows every forward call (for disconnect and concurrency tests); calls counts them. */
export function fakeStepModel(vocabSize: number, opts: { delayMs?: number } = {}): StepModel & { calls: number } {
  const manifest = fakeManifest(vocabSize)
  const model = {
    manifest,
    calls: 0,
    initState(batch: number): State {
      return [{ data: new Float32Array(batch), dims: [batch, 1] }]
    },
    async forward(ids: number[][], state: State) {
      model.calls++
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs))
      const batch = ids.length
      const seq = ids[0].length
      const logits = new Float32Array(batch * seq * vocabSize)
      ids.forEach((row, b) => row.forEach((id, s) => { logits[(b * seq + s) * vocabSize + favoured(id, vocabSize)] = PEAK }))
      const next = new Float32Array(batch)
      for (let b = 0; b < batch; b++) next[b] = state[0].data[b] + seq // the state counts tokens seen
      return { logits, state: [{ data: next, dims: [batch, 1] }] }
    },
  }
  return model
}

export function fakeServedModel(name = 'fake', opts: { delayMs?: number } = {}): ServedModel & { model: ReturnType<typeof fakeStepModel> } {
  const tokenizer = fakeTokenizer()
  const model = fakeStepModel(tokenizer.vocabSize, opts)
  return { name, tokenizer, model, manifest: model.manifest }
}

/** -log p of the favoured token and of any other token under the fake model. */
export function fakeNll(vocabSize: number): { favoured: number; other: number } {
  const z = Math.exp(PEAK) + (vocabSize - 1)
  return { favoured: -Math.log(Math.exp(PEAK) / z), other: -Math.log(1 / z) }
}
