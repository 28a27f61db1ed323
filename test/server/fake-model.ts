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

export interface FakeOptions {
  delayMs?: number
  /** Never end: 'h' is followed by 'a' and EOS can never be sampled. */
  endless?: boolean
}

/** What both fakes do first in forward: count the call, record its batch size, and sleep delayMs if asked. */
async function beginForward(model: { calls: number; rows: number[] }, ids: number[][], delayMs?: number): Promise<{ batch: number; seq: number }> {
  model.calls++
  model.rows.push(ids.length)
  if (delayMs) await new Promise((r) => setTimeout(r, delayMs))
  return { batch: ids.length, seq: ids[0].length }
}

/** delayMs slows every forward call (for disconnect and concurrency tests); calls counts them and rows
 * records each call's batch size. */
export function fakeStepModel(vocabSize: number, opts: FakeOptions = {}): StepModel & { calls: number; rows: number[] } {
  const manifest = fakeManifest(vocabSize)
  const model = {
    manifest,
    calls: 0,
    rows: [] as number[],
    initState(batch: number): State {
      return [{ data: new Float32Array(batch), dims: [batch, 1] }]
    },
    async forward(ids: number[][], state: State) {
      const { batch, seq } = await beginForward(model, ids, opts.delayMs)
      const logits = new Float32Array(batch * seq * vocabSize)
      ids.forEach((row, b) => row.forEach((id, s) => {
        const at = (b * seq + s) * vocabSize
        const next = favoured(id, vocabSize)
        logits[at + (opts.endless && next === 1 ? 4 : next)] = PEAK
        if (opts.endless) logits[at + 1] = -1e9
      }))
      const next = new Float32Array(batch)
      for (let b = 0; b < batch; b++) next[b] = state[0].data[b] + seq // the state counts tokens seen
      return { logits, state: [{ data: next, dims: [batch, 1] }] }
    },
  }
  return model
}

export function fakeServedModel(name = 'fake', opts: FakeOptions = {}): ServedModel & { model: ReturnType<typeof fakeStepModel> } {
  const tokenizer = fakeTokenizer()
  const model = fakeStepModel(tokenizer.vocabSize, opts)
  return { name, tokenizer, model, manifest: model.manifest }
}

/** -log p of the favoured token and of any other token under the fake model. */
export function fakeNll(vocabSize: number): { favoured: number; other: number } {
  const z = Math.exp(PEAK) + (vocabSize - 1)
  return { favoured: -Math.log(Math.exp(PEAK) / z), other: -Math.log(1 / z) }
}

/**
 * A Transformer-shaped fake: its only state is a KV cache [batch, 1, past, 1] holding every id fed so far,
 * and the favoured next token depends on all of them (4 + their sum mod 8: a letter), so a row that got
 * another row's cache, or a cache of the wrong length, generates other text. Rows of one call must have
 * the same length and the same past (as for a real KV cache); anything else throws.
 */
export function fakeKvModel(vocabSize: number, opts: { delayMs?: number } = {}): StepModel & { calls: number; rows: number[] } {
  const manifest: Manifest = {
    ...fakeManifest(vocabSize),
    architecture: 'fake-kv',
    maxSeqLen: 64,
    state: [{ input: 'past_key_values.0.key', output: 'present.0.key', shape: ['batch', 1, 'past', 1] }],
  }
  const model = {
    manifest,
    calls: 0,
    rows: [] as number[],
    initState(batch: number): State {
      return [{ data: new Float32Array(0), dims: [batch, 1, 0, 1] }]
    },
    async forward(ids: number[][], state: State) {
      const { batch, seq } = await beginForward(model, ids, opts.delayMs)
      const [b, , past] = state[0].dims
      if (b !== batch || state[0].data.length !== batch * past) throw new Error(`cache ${state[0].dims} does not fit ${batch} rows`)
      if (ids.some((r) => r.length !== seq)) throw new Error('rows of different lengths')
      if (past + seq > manifest.maxSeqLen!) throw new Error('past the context')
      const logits = new Float32Array(batch * seq * vocabSize)
      const next = new Float32Array(batch * (past + seq))
      for (let r = 0; r < batch; r++) {
        const cache = Array.from(state[0].data.subarray(r * past, (r + 1) * past))
        let sum = cache.reduce((a, x) => a + x, 0)
        ids[r].forEach((id, s) => {
          sum += id
          logits[(r * seq + s) * vocabSize + 4 + (sum % 8)] = PEAK
        })
        next.set([...cache, ...ids[r]], r * (past + seq))
      }
      return { logits, state: [{ data: next, dims: [batch, 1, past + seq, 1] }] }
    },
  }
  return model
}
