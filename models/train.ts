// Training with TF.js: AdamW, linear warmup then linear decay, clipping by global norm, shuffled context
// windows with a seed, checkpoints (safetensors) and metrics.jsonl under exp/NAME/.
import * as tf from '@tensorflow/tfjs-core'
import { appendFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { LmpError } from '../src/errors.ts'
import { lmWindows } from '../src/data/index.ts'
import { PAD_ID, type Tokenizer } from '../src/tokenizer/index.ts'
import { createRng } from '../src/infer/rng.ts'
import { ProgressBar } from '../src/progress.ts'
import { checkpointPath } from '../src/exp.ts'
import { writeSafetensors, type NamedTensor } from './safetensors.ts'
import { createModel, forwardTf, initWeights, lossTf, type LanguageModel, type ModelConfig } from './lm.ts'
import { TfOps } from './tf-ops.ts'

export interface TrainConfig {
  batchSize: number
  lr: number
  beta1: number
  beta2: number
  eps: number
  weightDecay: number
  maxNorm: number
  maxSeqLen: number
  stride: number
  totalStep: number
  warmupStep: number
  ckptStep: number
  logStep: number
  seed: number
}

export interface TrainResult {
  model: LanguageModel
  weights: Record<string, Float32Array>
  finalLoss: number
  tokensPerSec: number
  steps: number
}

/** Learning rate after `step` completed steps: linear warmup (never 0, unlike lmp), then linear decay. */
export function learningRate(c: Pick<TrainConfig, 'lr' | 'warmupStep' | 'totalStep'>, step: number): number {
  if (step < c.warmupStep) return (c.lr * (step + 1)) / c.warmupStep
  return (c.lr * Math.max(0, c.totalStep - step)) / Math.max(1, c.totalStep - c.warmupStep)
}

/** Token windows as rows: inputs and targets, with targets that only re-read context set to PAD. */
export function buildWindows(samples: Iterable<string>, tokenizer: Tokenizer, maxSeqLen: number, stride: number) {
  const inputs: number[][] = []
  const targets: number[][] = []
  for (const w of lmWindows(samples, tokenizer, maxSeqLen, stride)) {
    inputs.push(w.cur)
    targets.push(w.next.map((id, i) => (w.isNotCtx[i] ? id : PAD_ID)))
  }
  return { inputs, targets }
}

export function validateTrainConfig(c: TrainConfig) {
  const ints = ['batchSize', 'maxSeqLen', 'stride', 'totalStep', 'warmupStep', 'ckptStep', 'logStep'] as const
  for (const k of ints) if (!Number.isInteger(c[k]) || c[k] < 1) throw new LmpError(`${k} must be an integer >= 1, got ${c[k]}`)
  if (c.stride > c.maxSeqLen) throw new LmpError('must have 1 <= stride <= max_seq_len')
  if (c.warmupStep > c.totalStep) throw new LmpError('must have 1 <= warmup_step <= total_step')
  if (!(c.lr > 0)) throw new LmpError('lr must be > 0')
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1)) throw new LmpError('beta1 and beta2 must be in [0, 1)')
  if (!(c.eps >= 0 && c.weightDecay >= 0 && c.maxNorm >= 0)) throw new LmpError('eps, weight_decay and max_norm must be >= 0')
}

/**
 * Train `modelConfig` on `samples` and write checkpoints to `dir`. The caller has written config.json
 * and tokenizer.json there already.
 */
export async function train(opts: {
  dir: string
  modelConfig: ModelConfig
  trainConfig: TrainConfig
  tokenizer: Tokenizer
  samples: string[]
  quiet?: boolean
  /** Called after every optimizer step (benchmarks, tests). */
  onStep?: (info: { step: number; loss: number; ms: number }) => void
}): Promise<TrainResult> {
  const { dir, trainConfig: c, tokenizer } = opts
  validateTrainConfig(c)
  const model = createModel(opts.modelConfig)
  const { inputs, targets } = buildWindows(opts.samples, tokenizer, c.maxSeqLen, c.stride)
  if (inputs.length === 0) throw new LmpError('the dataset has no training windows')
  mkdirSync(dir, { recursive: true })

  const initRng = createRng(c.seed)
  const init = initWeights(model, () => initRng.next())
  const specs = model.params()
  const vars: Record<string, tf.Variable> = {}
  for (const [name, data] of Object.entries(init)) vars[name] = tf.variable(tf.tensor(data, specs[name].shape), true, name)
  const names = Object.keys(vars)
  const varList = names.map((n) => vars[n])
  const m = names.map((n) => tf.variable(tf.zerosLike(vars[n]), false))
  const v = names.map((n) => tf.variable(tf.zerosLike(vars[n]), false))
  // Biases (and, later, LayerNorm gains) are not decayed.
  const decays = names.map((n) => !/\.bias$|^ln|\.ln/.test(n))

  // The order of windows in epoch e depends only on (seed, e), and dropout seeds only on (seed, step):
  // a run can be resumed from (step, epoch, cursor) alone.
  let order: number[] = []
  let epoch = -1
  let cursor = inputs.length
  const nextBatch = (): number[] => {
    const batch: number[] = []
    while (batch.length < c.batchSize) {
      if (cursor >= order.length) {
        epoch++
        order = shuffle(inputs.length, c.seed + 7919 * (epoch + 1))
        cursor = 0
      }
      batch.push(order[cursor++])
    }
    return batch
  }

  const metricsPath = join(dir, 'metrics.jsonl')
  const bar = opts.quiet ? null : new ProgressBar('train', c.totalStep)
  const tokensPerStep = c.batchSize * c.maxSeqLen
  let recentLoss: number[] = []
  let finalLoss = NaN
  const t0 = performance.now()
  let lastCkpt = -1

  for (let step = 0; step < c.totalStep; step++) {
    const stepStart = performance.now()
    const batch = nextBatch()
    const lr = learningRate(c, step)
    const dropoutRng = createRng(c.seed * 1_000_003 + step)
    const lossValue = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const o = new TfOps(vars, true, () => dropoutRng.nextUint32())
        const { logits } = forwardTf(model, o, batch.map((i) => inputs[i]))
        return lossTf(logits, batch.map((i) => targets[i]), opts.modelConfig.labelSmoothing).loss
      }, varList)
      const g = names.map((n) => grads[n])
      // Clip by global L2 norm.
      const norm = tf.sqrt(tf.addN(g.map((x) => tf.sum(tf.square(x)))))
      const scale = c.maxNorm > 0 ? tf.minimum(1, tf.div(c.maxNorm, tf.add(norm, 1e-6))) : tf.scalar(1)
      const t = step + 1
      const bc1 = 1 - c.beta1 ** t
      const bc2 = 1 - c.beta2 ** t
      names.forEach((_, i) => {
        const gi = tf.mul(g[i], scale)
        m[i].assign(tf.add(tf.mul(m[i], c.beta1), tf.mul(gi, 1 - c.beta1)))
        v[i].assign(tf.add(tf.mul(v[i], c.beta2), tf.mul(tf.square(gi), 1 - c.beta2)))
        const update = tf.div(tf.div(m[i], bc1), tf.add(tf.sqrt(tf.div(v[i], bc2)), c.eps))
        const p = varList[i]
        const decayed = decays[i] && c.weightDecay > 0 ? tf.mul(p, 1 - lr * c.weightDecay) : p
        p.assign(tf.sub(decayed, tf.mul(update, lr)))
      })
      return value.dataSync()[0]
    })
    if (!Number.isFinite(lossValue)) {
      bar?.done()
      throw new LmpError(
        `loss became ${lossValue} at step ${step + 1}; stopped` +
          (lastCkpt >= 0 ? ` (last good checkpoint: step ${lastCkpt})` : ' before any checkpoint') +
          ': try a lower --lr or a smaller --max-norm',
      )
    }
    recentLoss.push(lossValue)
    opts.onStep?.({ step: step + 1, loss: lossValue, ms: performance.now() - stepStart })
    const done = step + 1
    const tokensPerSec = (done * tokensPerStep) / ((performance.now() - t0) / 1000)
    bar?.update(done, `loss ${lossValue.toFixed(4)} | ${Math.round(tokensPerSec)} tok/s`)
    if (done % c.logStep === 0 || done === c.totalStep) {
      finalLoss = recentLoss.reduce((a, b) => a + b, 0) / recentLoss.length
      recentLoss = []
      appendFileSync(metricsPath, JSON.stringify({ step: done, loss: finalLoss, lr, tokensPerSec: Math.round(tokensPerSec), time: Date.now() }) + '\n')
    }
    if (done % c.ckptStep === 0 || done === c.totalStep) {
      await saveCheckpoint(dir, done, names, varList, m, v, { epoch, cursor })
      lastCkpt = done
    }
  }
  bar?.done()
  const tokensPerSec = (c.totalStep * tokensPerStep) / ((performance.now() - t0) / 1000)
  const weights: Record<string, Float32Array> = {}
  names.forEach((n, i) => (weights[n] = varList[i].dataSync() as Float32Array))
  for (const x of [...varList, ...m, ...v]) x.dispose()
  return { model, weights, finalLoss, tokensPerSec, steps: c.totalStep }
}

async function saveCheckpoint(
  dir: string, step: number, names: string[], params: tf.Variable[], m: tf.Variable[], v: tf.Variable[],
  position: { epoch: number; cursor: number },
) {
  const asNamed = (x: tf.Tensor): NamedTensor => ({ dtype: 'F32', shape: x.shape, data: x.dataSync() as Float32Array })
  const weights: Record<string, NamedTensor> = {}
  const optim: Record<string, NamedTensor> = {}
  names.forEach((n, i) => {
    weights[n] = asNamed(params[i])
    optim[`exp_avg.${n}`] = asNamed(m[i])
    optim[`exp_avg_sq.${n}`] = asNamed(v[i])
  })
  const meta = { step: String(step), epoch: String(position.epoch), cursor: String(position.cursor) }
  await writeSafetensors(join(dir, `ckpt-${step}.optim.safetensors`), optim, meta)
  await writeSafetensors(checkpointPath(dir, step), weights, { step: String(step), format: 'pt' })
}

/** Fisher–Yates shuffle of 0..n-1 with a seeded generator. */
function shuffle(n: number, seed: number): number[] {
  const rng = createRng(seed)
  const a = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
