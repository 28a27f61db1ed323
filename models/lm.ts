// Model options, defaults and validation, and the TF.js forward pass and loss shared by training,
// evaluation and the consistency tests.
import * as tf from '@tensorflow/tfjs-core'
import { LmpError } from '../src/errors.ts'
import { maskAndPositions } from '../src/infer/batch.ts'
import { RecurrentLM, RNN_NAMES, type RnnConfig, type ParamSpec } from './rnn.ts'
import { TransformerLM, TRANSFORMER_NAMES, type TransformerConfig } from './transformer.ts'
import { stackFirst, TfOps, unstackFirst } from './tf-ops.ts'

export const MODEL_NAMES = [...RNN_NAMES, ...TRANSFORMER_NAMES] as const
/** One flat config for every architecture (as the CLI builds it); each model reads its own fields. */
export type ModelConfig = Omit<RnnConfig, 'model'> & Omit<TransformerConfig, 'model'> & { model: string; labelSmoothing: number }
export type LanguageModel = RecurrentLM | TransformerLM

/** lmp's defaults, except where noted in the README (Transformer: GPT-2's layout). */
export const MODEL_DEFAULTS = {
  dEmb: 1, dHid: 1, nBlk: 1, dBlk: 1, nLyr: 1, pEmb: 0, pHid: 0,
  initLower: -0.1, initUpper: 0.1, initIb: -1, initOb: -1, initFb: 1, labelSmoothing: 0,
  dModel: 1, nHead: 1, dFf: 1, p: 0, maxSeqLen: 512,
  activation: 'gelu' as const, layout: 'pre-ln' as const, positions: 'learned' as const,
}

export function createModel(config: ModelConfig): LanguageModel {
  const c = config
  if (!(MODEL_NAMES as readonly string[]).includes(c.model)) {
    throw new LmpError(`unknown model '${c.model}'; choose one of ${MODEL_NAMES.join(', ')}`)
  }
  if ((TRANSFORMER_NAMES as readonly string[]).includes(c.model)) return createTransformer(c)
  const positive = ['vocabSize', 'dEmb', 'dHid', 'nBlk', 'dBlk', 'nLyr'] as const
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new LmpError(`${k} must be an integer >= 1, got ${c[k]}`)
  }
  for (const k of ['pEmb', 'pHid', 'labelSmoothing'] as const) {
    if (!(c[k] >= 0 && c[k] < 1)) throw new LmpError(`${k} must be in [0, 1), got ${c[k]}`)
  }
  if (!(c.initLower <= c.initUpper)) throw new LmpError('must have init_lower <= init_upper')
  if (c.initIb > 0 || c.initOb > 0) throw new LmpError('init_ib and init_ob must be <= 0')
  if (c.initFb < 0) throw new LmpError('init_fb must be >= 0')
  return new RecurrentLM(c as RnnConfig)
}

function createTransformer(c: ModelConfig): TransformerLM {
  for (const k of ['vocabSize', 'dModel', 'nHead', 'dFf', 'nLyr', 'maxSeqLen'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new LmpError(`${k} must be an integer >= 1, got ${c[k]}`)
  }
  if (c.dModel % c.nHead !== 0) throw new LmpError(`d_model (${c.dModel}) must be a multiple of n_head (${c.nHead})`)
  for (const k of ['p', 'labelSmoothing'] as const) {
    if (!(c[k] >= 0 && c[k] < 1)) throw new LmpError(`${k} must be in [0, 1), got ${c[k]}`)
  }
  if (!(c.initLower <= c.initUpper)) throw new LmpError('must have init_lower <= init_upper')
  const choices = { activation: ['gelu', 'relu'], layout: ['pre-ln', 'post-ln'], positions: ['learned', 'sinusoidal'] } as const
  for (const [k, allowed] of Object.entries(choices) as [keyof typeof choices, readonly string[]][]) {
    if (!allowed.includes(c[k])) throw new LmpError(`${k} must be one of ${allowed.join(', ')}, got '${c[k]}'`)
  }
  return new TransformerLM({
    model: 'Transformer', vocabSize: c.vocabSize, dModel: c.dModel, nHead: c.nHead, dFf: c.dFf, nLyr: c.nLyr,
    p: c.p, maxSeqLen: c.maxSeqLen, activation: c.activation, layout: c.layout, positions: c.positions,
    initLower: c.initLower, initUpper: c.initUpper,
  })
}

/** Fresh weights, each drawn uniformly from its spec's range with the given random source. */
export function initWeights(model: LanguageModel, random: () => number): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {}
  for (const [name, spec] of Object.entries(model.params()) as [string, ParamSpec][]) {
    const [lo, hi] = spec.init
    const data = new Float32Array(spec.shape.reduce((a, b) => a * b, 1))
    for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * random()
    out[name] = data
  }
  return out
}

/** Zero state for a batch: recurrent state in stateSpec order; for the Transformer an empty cache
 * (key then value per layer, each [batch, heads, 0, head_dim]). */
export function zeroStateTf(model: LanguageModel, batch: number): tf.Tensor[] {
  if (model.kind === 'transformer') {
    const { nHead, nLyr } = model.config
    return Array.from({ length: 2 * nLyr }, () => tf.zeros([batch, nHead, 0, model.headDim]))
  }
  return model.stateSpec().map((s) => tf.zeros([batch, s.size]))
}

/**
 * The Transformer over rows of token ids [batch, S] in one pass: logits [batch, S, vocab] as one tensor
 * (slicing it per step is slow on wasm). With `cache` (key then value per layer, [batch, heads, past,
 * head_dim]; may be empty) the tokens follow the cache and the extended cache is returned; without it
 * (training) no cache is built. `pastPadding`: slots at the start of each row's cache that hold no token
 * (TransformerLM.forward).
 */
export function forwardTransformerTf(model: TransformerLM, o: TfOps, ids: number[][], cache: tf.Tensor[] | null, pastPadding?: number[]) {
  const steps = ids[0]?.length ?? 0
  const pastLen = (cache?.[0]?.shape[2] ?? 0) - (pastPadding ? Math.min(...pastPadding) : 0)
  if (pastLen + steps > model.config.maxSeqLen) {
    throw new LmpError(`the Transformer has ${model.config.maxSeqLen} positions; got ${pastLen} cached + ${steps} new tokens`)
  }
  const idsT = tf.tensor2d(ids.flat(), [ids.length, steps], 'int32')
  const past = cache ? Array.from({ length: model.config.nLyr }, (_, l) => ({ key: cache[2 * l], value: cache[2 * l + 1] })) : null
  let rows: { positions: tf.Tensor; attentionMask: tf.Tensor } | null = null
  if (pastPadding) {
    const { mask, positions } = maskAndPositions(cache?.[0]?.shape[2] ?? 0, steps, pastPadding, Int32Array, Number)
    rows = { positions: tf.tensor2d(positions, [ids.length, steps], 'int32'), attentionMask: tf.tensor2d(mask, [ids.length, mask.length / ids.length], 'int32') }
  }
  const { logits, present, attentions } = model.forward(o, idsT, past, rows)
  return { logits: logits as tf.Tensor3D, state: present.flatMap((kv) => [kv.key, kv.value]), attentions }
}

let perTokenProjection = true

/** Turns off the per-token projection of forwardTf (every position projected): tests, before/after bench. */
export function usePerTokenProjection(on: boolean) {
  perTokenProjection = on
}

/**
 * Run the model over rows of token ids (batch × steps). Recurrent models go one step at a time (on the
 * wasm backend small per-step tensors are far cheaper than slicing one big sequence tensor,
 * ../shared/MEASURED.md) and return the logits of each step ([batch, vocab]) and the final state. The
 * Transformer returns logits [batch, steps, vocab] as one tensor, and the extended cache when `state`
 * (a cache, zeroStateTf's layout) is given, else an empty state.
 */
export function forwardTf(
  model: LanguageModel,
  o: TfOps,
  ids: number[][],
  state?: tf.Tensor[],
  pastPadding?: number[],
): { logits: tf.Tensor2D[] | tf.Tensor3D; state: tf.Tensor[] } {
  if (model.kind === 'transformer') {
    const { logits, state: next } = forwardTransformerTf(model, o, ids, state ?? null, pastPadding)
    return { logits, state: next }
  }
  state ??= zeroStateTf(model, ids.length)
  const steps = ids[0]?.length ?? 0
  const batch = ids.length
  const spec = model.stateSpec()
  const st = [...state]
  // Time-major [steps, batch, ...]. Whatever does not depend on the previous step (embedding, each layer's
  // input projection, dropout between layers, the head) runs once over the whole sequence as large
  // matMuls; only the cell runs per step, on small [batch, ...] tensors split off without wasm's
  // whole-input copies (unstackFirst).
  const tokens = tf.tensor2d(Array.from({ length: steps * batch }, (_, k) => ids[k % batch][Math.floor(k / batch)]), [steps, batch], 'int32')
  // Layer 0's projected input depends on the token alone unless dropout is on along the way: then each of
  // the V vocabulary entries is embedded and projected once and rows are picked per position, V rows of
  // work instead of steps × batch (68 against 2,048 for a character model at batch 32 × 64). The same
  // numbers to float rounding; the gradient sums over positions as the per-position path does.
  const { vocabSize, pEmb, pHid } = model.config
  const perToken = perTokenProjection && !(o.training && (pEmb > 0 || pHid > 0)) && vocabSize < steps * batch
  let x = perToken ? null : model.embed(o, tokens)
  for (let l = 0; l < model.config.nLyr; l++) {
    const idx = spec.map((s, i) => (s.layer === l ? i : -1)).filter((i) => i >= 0)
    const outputs: tf.Tensor[] = []
    const projected = x === null
      ? o.embed(model.inputProjection(o, 0, model.embed(o, tf.range(0, vocabSize, 1, 'int32'))), tokens)
      : model.inputProjection(o, l, x)
    // The recurrent weight's gradient as one product over the sequence (TfOps.deferWeightGrad).
    const xpSeq = o.deferWeightGrad(projected, o.param(`stack_rnn.${l}.fc_h2h.weight`))
    for (const xp of unstackFirst(xpSeq)) {
      const next = model.cell(o, l, xp, idx.map((i) => st[i]))
      idx.forEach((i, k) => (st[i] = next[k]))
      outputs.push(next[0])
    }
    x = model.between(o, stackFirst(outputs))
  }
  return { logits: tf.transpose(model.head(o, x!), [1, 0, 2]) as tf.Tensor3D, state: st } // n_lyr >= 1: x is set
}

/**
 * Cross-entropy of per-step logits against target rows, averaged over the targets that are not ignored
 * (IGNORE_INDEX, -1, or any negative id: PyTorch's ignore_index; lmp ignores PAD targets, which the data
 * order marks so), with optional label smoothing over all classes.
 */
export function lossTf(logits: tf.Tensor2D[] | tf.Tensor3D, targets: number[][], labelSmoothing = 0): { loss: tf.Scalar; count: number } {
  if (!Array.isArray(logits)) {
    // [batch, steps, vocab] as one [batch·steps, vocab] step, targets flattened to match (row-major).
    const [batch, steps, vocabSize] = logits.shape
    return lossTf([tf.reshape(logits, [batch * steps, vocabSize]) as tf.Tensor2D], targets.flat().map((id) => [id]), labelSmoothing)
  }
  const vocab = logits[0].shape[1]
  let count = 0
  const terms = logits.map((lg, t) => {
    const col = targets.map((row) => row[t])
    const weights: number[] = col.map((id) => (id < 0 ? 0 : 1))
    count += weights.reduce((a, b) => a + b, 0)
    const logp = tf.logSoftmax(lg)
    let target = tf.cast(tf.oneHot(tf.tensor1d(col, 'int32'), vocab), 'float32')
    if (labelSmoothing > 0) target = tf.add(tf.mul(target, 1 - labelSmoothing), labelSmoothing / vocab)
    const nll = tf.neg(tf.sum(tf.mul(logp, target), -1))
    return tf.sum(tf.mul(nll, tf.tensor1d(weights)))
  })
  const total = terms.length === 1 ? terms[0] : tf.addN(terms)
  return { loss: tf.div(total, Math.max(count, 1)) as tf.Scalar, count }
}
