// Validation on nanoGPT's character task (`--task nanogpt`): the loss over one token stream, as nanoGPT
// estimates it (the mean over eval_iters random batches, its estimate_loss) and as a deterministic full pass.
import * as tf from '@tensorflow/tfjs-core'
import { forwardTf, lossTf, type LanguageModel } from './lm.ts'
import { TfOps } from './tf-ops.ts'
import { fullPassWindows, randomWindows } from './data-order.ts'

/** Rows per forward call: at these sizes the cost is per TF.js op, not per row. */
const ROWS = 128

/**
 * Summed cross-entropy (nats) and the number of targets of `rows`, with the live weights in eval mode (no
 * dropout); ignored targets (negative: IGNORE_INDEX) are not counted.
 */
export function sumLoss(model: LanguageModel, params: Record<string, tf.Tensor>, inputs: number[][], targets: number[][]): { sum: number; count: number } {
  const o = new TfOps(params, false)
  let sum = 0
  let count = 0
  for (let i = 0; i < inputs.length; i += ROWS) {
    const t = targets.slice(i, i + ROWS)
    const r = tf.tidy(() => {
      const out = forwardTf(model, o, inputs.slice(i, i + ROWS))
      const { loss, count } = lossTf(out.logits, t)
      return { mean: loss.dataSync()[0], count }
    })
    sum += r.mean * r.count
    count += r.count
  }
  return { sum, count }
}

/**
 * The validation loss of a token stream in nats per token, two ways:
 * - `estimate`: nanoGPT's estimate_loss, the mean of the losses of `evalIters` batches of `batchSize` random
 *   windows (every batch has batchSize × maxSeqLen targets, so this is the mean over all their targets).
 *   The windows depend on `seed` only: pass a different one per evaluation, as nanoGPT draws new ones.
 * - `full`: every token of the stream once (fullPassWindows), deterministic; `ppl` is exp(full).
 */
export function streamLoss(
  model: LanguageModel, params: Record<string, tf.Tensor>, ids: Int32Array,
  c: { batchSize: number; maxSeqLen: number; evalIters: number; seed: number },
): { full: number; ppl: number; estimate: number } {
  const windows = randomWindows(ids, c)
  const inputs: number[][] = []
  const targets: number[][] = []
  for (let k = 0; k < c.evalIters; k++) {
    const b = windows.next()
    inputs.push(...b.inputs)
    targets.push(...b.targets)
  }
  const est = sumLoss(model, params, inputs, targets)
  const all = fullPassWindows(ids, c.maxSeqLen)
  const full = sumLoss(model, params, all.inputs, all.targets)
  const fullLoss = full.sum / full.count
  return { full: fullLoss, ppl: Math.exp(fullLoss), estimate: est.sum / est.count }
}
