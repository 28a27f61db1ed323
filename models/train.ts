// Training with TF.js: AdamW (no decay on biases and LayerNorm gains), linear warmup then linear or cosine
// decay, clipping by global norm, shuffled context windows with a seed or truncated BPTT over contiguous
// streams, periodic validation perplexity with the best checkpoint kept, checkpoints (safetensors) that
// resume exactly, and metrics.jsonl under exp/NAME/.
//
// Files written in `dir`:
//   ckpt-STEP.safetensors        the weights (a PyTorch-style state dict)
//   ckpt-STEP.optim.safetensors  AdamW moments (exp_avg.NAME, exp_avg_sq.NAME), the carried TBPTT state
//                                (tbptt_state.I), and in its metadata everything else a resume needs
//   metrics.jsonl                {step, loss, lr, tokensPerSec, time} per logged step,
//                                {step, valPpl, valLoss} per evaluation
//   best.json                    {step, valPpl, valLoss, checkpoint}: the evaluation with the lowest
//                                validation loss; its checkpoint is always written and never deleted
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { LmpError } from '../src/errors.ts'
import type { Tokenizer } from '../src/tokenizer/index.ts'
import { createRng } from '../src/infer/rng.ts'
import { scoreTexts } from '../src/infer/perplexity.ts'
import type { Manifest, StepModel } from '../src/infer/types.ts'
import { ProgressBar } from '../src/progress.ts'
import { checkpointPath } from '../src/exp.ts'
import { appendLine, writeFileAtomic, WriteError } from '../src/io/atomic.ts'
import { readSafetensors, writeSafetensors, type NamedTensor } from './safetensors.ts'
import { createModel, forwardTf, initWeights, lossTf, type LanguageModel, type ModelConfig } from './lm.ts'
import { TfOps } from './tf-ops.ts'
import { fusedAdamW, wasmKernelsAvailable } from './wasm-kernels.ts'
import { randomWindows, shuffledWindows, streamIds, tbpttStreams, type Position } from './data-order.ts'
import { streamLoss } from './stream-eval.ts'

export { buildWindows, shuffledWindows, tbpttStreams, type Batch, type DataOrder, type Position } from './data-order.ts'

export const LR_SCHEDULES = ['linear', 'cosine'] as const
export type LrSchedule = (typeof LR_SCHEDULES)[number]

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
  /** Truncated BPTT (recurrent models): rows are contiguous streams, the state carried across steps. */
  tbptt?: boolean
  /** Decay after warmup (default linear). */
  lrSchedule?: LrSchedule
  /** Where the decay ends (default 0). */
  minLr?: number
  /** Validation perplexity every N steps and at the end (0 or absent: off). */
  evalStep?: number
  /**
   * nanoGPT's character task: rows are random windows of one token stream (the samples without BOS/EOS,
   * concatenated), and validation scores the validation stream (models/stream-eval.ts).
   */
  randomWindows?: boolean
  /** With randomWindows: the batches of the validation estimate (nanoGPT's eval_iters; default 200). */
  evalIters?: number
}

export interface TrainResult {
  model: LanguageModel
  weights: Record<string, Float32Array>
  finalLoss: number
  tokensPerSec: number
  steps: number
  /** The step this run started from (0, or the resumed checkpoint's). */
  startStep: number
  /** The best validation result (evalStep > 0). */
  best: BestCheckpoint | null
}

export interface BestCheckpoint {
  step: number
  valPpl: number
  valLoss: number
}

/**
 * Learning rate after `step` completed steps: linear warmup (never 0, unlike lmp), then linear or
 * cosine decay from lr towards minLr, reached at totalStep.
 */
export function learningRate(
  c: Pick<TrainConfig, 'lr' | 'warmupStep' | 'totalStep' | 'lrSchedule' | 'minLr'>,
  step: number,
): number {
  if (step < c.warmupStep) return (c.lr * (step + 1)) / c.warmupStep
  const minLr = c.minLr ?? 0
  const span = Math.max(1, c.totalStep - c.warmupStep)
  if (c.lrSchedule === 'cosine') {
    const progress = Math.min(1, (step - c.warmupStep) / span)
    return minLr + ((c.lr - minLr) * (1 + Math.cos(Math.PI * progress))) / 2
  }
  return minLr + ((c.lr - minLr) * Math.max(0, c.totalStep - step)) / span
}

/**
 * Whether AdamW decays this parameter: not biases (`*.bias`) and not LayerNorm gains (a path segment
 * starting with `ln`, as in GPT-2's `h.0.ln_1.weight` and `ln_f.weight`, or named like `layer_norm`/`norm`).
 * Unlike lmp, whose rule ('LayerNorm.weight' in the name) missed its own `ln_1`/`ln_2`.
 */
export function isDecayed(name: string): boolean {
  if (name.endsWith('.bias') || name === 'bias') return false
  return !name.split('.').some((segment) => /^(ln|layer_?norm|norm)/i.test(segment))
}

export function validateTrainConfig(c: TrainConfig) {
  const ints = ['batchSize', 'maxSeqLen', 'stride', 'totalStep', 'warmupStep', 'ckptStep', 'logStep'] as const
  for (const k of ints) if (!Number.isInteger(c[k]) || c[k] < 1) throw new LmpError(`${k} must be an integer >= 1, got ${c[k]}`)
  if (c.stride > c.maxSeqLen) throw new LmpError('must have 1 <= stride <= max_seq_len')
  if (c.warmupStep > c.totalStep) throw new LmpError(`--warmup-step (${c.warmupStep}) must be <= --total-step (${c.totalStep})`)
  if (!(c.lr > 0)) throw new LmpError('lr must be > 0')
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1)) throw new LmpError('beta1 and beta2 must be in [0, 1)')
  if (!(c.eps >= 0 && c.weightDecay >= 0 && c.maxNorm >= 0)) throw new LmpError('eps, weight_decay and max_norm must be >= 0')
  if (c.lrSchedule !== undefined && !LR_SCHEDULES.includes(c.lrSchedule)) {
    throw new LmpError(`lr_schedule must be one of ${LR_SCHEDULES.join(', ')}, got '${c.lrSchedule}'`)
  }
  const minLr = c.minLr ?? 0
  if (!(minLr >= 0 && minLr <= c.lr)) throw new LmpError(`must have 0 <= min_lr <= lr, got min_lr ${minLr}`)
  const evalStep = c.evalStep ?? 0
  if (!Number.isInteger(evalStep) || evalStep < 0) throw new LmpError(`eval_step must be an integer >= 0, got ${evalStep}`)
  const evalIters = c.evalIters ?? 200
  if (!Number.isInteger(evalIters) || evalIters < 1) throw new LmpError(`eval_iters must be an integer >= 1, got ${evalIters}`)
  if (c.tbptt && c.randomWindows) throw new LmpError('--tbptt and random windows (--task nanogpt) are two data orders: choose one')
}

/** What a resume restores, from a checkpoint's optimizer file. */
interface Saved {
  step: number
  position: Position
  recentLoss: number[]
  best: BestCheckpoint | null
  weights: Record<string, NamedTensor>
  optim: Record<string, NamedTensor>
}

/**
 * Train `modelConfig` on `samples` and write checkpoints to `dir`. The caller has written lmp_config.json
 * and lmp_tokenizer.json there already. With `resume`, training continues from the last complete checkpoint
 * in `dir` and gives the same losses as a run that was never stopped.
 */
export async function train(opts: {
  dir: string
  modelConfig: ModelConfig
  trainConfig: TrainConfig
  tokenizer: Tokenizer
  samples: string[]
  /** The validation split, for evalStep > 0. */
  validSamples?: string[]
  resume?: boolean
  /** Initial weights by parameter name (a pretrained model, `--init-from`) instead of random ones. */
  init?: Record<string, Float32Array>
  quiet?: boolean
  /** Called after every optimizer step (benchmarks, tests). */
  onStep?: (info: { step: number; loss: number; ms: number }) => void
  /** Called after every evaluation; valLossEstimate with randomWindows (nanoGPT's estimate_loss). */
  onEval?: (info: { step: number; valPpl: number; valLoss: number; valLossEstimate?: number }) => void
}): Promise<TrainResult> {
  const { dir, trainConfig: c, tokenizer } = opts
  validateTrainConfig(c)
  const model = createModel(opts.modelConfig)
  const evalStep = c.evalStep ?? 0
  if (evalStep > 0 && !opts.validSamples?.length) throw new LmpError('eval_step needs validation samples (the dataset has none)')
  if (c.tbptt && model.kind !== 'recurrent') {
    throw new LmpError(`--tbptt is for recurrent models; ${opts.modelConfig.model} has no state to carry`)
  }
  const data = c.tbptt
    ? tbpttStreams(opts.samples, tokenizer, c.batchSize, c.maxSeqLen)
    : c.randomWindows ? randomWindows(streamIds(opts.samples, tokenizer), c) : shuffledWindows(opts.samples, tokenizer, c)
  const validIds = c.randomWindows && evalStep > 0 ? streamIds(opts.validSamples!, tokenizer) : null
  mkdirSync(dir, { recursive: true })

  const saved = opts.resume ? await loadResumePoint(dir, c.totalStep) : null
  if (saved) {
    // What a stopped run did after its last checkpoint is done again, identically.
    await forgetAfter(dir, saved.step)
    if (saved.best) await writeBest(dir, saved.best)
    else rmSync(join(dir, 'best.json'), { force: true })
  }
  const specs = model.params()
  const names = Object.keys(specs)
  let init: Record<string, Float32Array>
  if (saved) {
    init = {}
    for (const n of names) init[n] = checkedTensor(saved.weights, n, specs[n].shape, `ckpt-${saved.step}.safetensors`)
  } else if (opts.init) {
    init = {}
    for (const n of names) {
      const data = opts.init[n]
      const size = specs[n].shape.reduce((a, b) => a * b, 1)
      if (!data || data.length !== size) throw new LmpError(`initial weights: '${n}' needs ${size} values, got ${data?.length ?? 'none'}`)
      init[n] = data
    }
  } else {
    const initRng = createRng(c.seed)
    init = initWeights(model, () => initRng.next())
  }
  // tf.variable keeps its initial tensor alive beside it unless that is disposed.
  const variable = (x: tf.Tensor, trainable: boolean, name?: string) => {
    const out = tf.variable(x, trainable, name)
    x.dispose()
    return out
  }
  const vars: Record<string, tf.Variable> = {}
  for (const n of names) vars[n] = variable(tf.tensor(init[n], specs[n].shape), true, n)
  const varList = names.map((n) => vars[n])
  const moment = (prefix: string) =>
    names.map((n) => {
      if (!saved) return variable(tf.zeros(specs[n].shape), false)
      const data = checkedTensor(saved.optim, `${prefix}.${n}`, specs[n].shape, `ckpt-${saved.step}.optim.safetensors`)
      return variable(tf.tensor(data, specs[n].shape), false)
    })
  const m = moment('exp_avg')
  const v = moment('exp_avg_sq')
  const decays = names.map(isDecayed)

  // TBPTT: the final state of the last step, detached (a plain tensor: no gradient flows into it).
  let carried: tf.Tensor[] | null = null
  if (saved) {
    data.seek(saved.position)
    if (c.tbptt && 'tbptt_state.0' in saved.optim) {
      carried = []
      for (let i = 0; `tbptt_state.${i}` in saved.optim; i++) {
        const t = saved.optim[`tbptt_state.${i}`]
        carried.push(tf.tensor(t.data as Float32Array, t.shape))
      }
    }
  }

  const startStep = saved?.step ?? 0
  const metricsPath = join(dir, 'metrics.jsonl')
  const bar = opts.quiet ? null : new ProgressBar('train', c.totalStep)
  const tokensPerStep = c.batchSize * c.maxSeqLen
  let recentLoss: number[] = saved?.recentLoss ?? []
  let best: BestCheckpoint | null = saved?.best ?? null
  let finalLoss = NaN
  const t0 = performance.now()
  let evalMs = 0 // not training time: left out of tokens/s
  let lastCkpt = saved?.step ?? -1

  const state = () => ({ carried, recentLoss, best })
  try {
    for (let step = startStep; step < c.totalStep; step++) {
      const stepStart = performance.now()
      const batch = data.next()
      if (batch.fresh && carried) {
        for (const t of carried) t.dispose()
        carried = null
      }
      const lr = learningRate(c, step)
      const dropoutRng = createRng(c.seed * 1_000_003 + step)
      let nextState: tf.Tensor[] | null = null
      // Reads are async (await data()): the webgpu backend cannot read synchronously in Node.
      const lossTensor = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const o = new TfOps(vars, true, () => dropoutRng.nextUint32())
          const out = forwardTf(model, o, batch.inputs, carried ?? undefined)
          if (c.tbptt) nextState = out.state.map((s) => tf.keep(s))
          return lossTf(out.logits, batch.targets, opts.modelConfig.labelSmoothing).loss
        }, varList)
        const g = names.map((n) => grads[n])
        // Clip by global L2 norm.
        const norm = tf.sqrt(tf.addN(g.map((x) => tf.sum(tf.square(x)))))
        const scale = c.maxNorm > 0 ? tf.minimum(1, tf.div(c.maxNorm, tf.add(norm, 1e-6))) : tf.scalar(1)
        const t = step + 1
        const bc1 = 1 - c.beta1 ** t
        const bc2 = 1 - c.beta2 ** t
        names.forEach((_, i) => {
          const p = varList[i]
          if (wasmKernelsAvailable()) {
            // The same steps as below in one wasm kernel (models/wasm-kernels.ts): ~15 kernels fewer a parameter.
            const decay = decays[i] && c.weightDecay > 0 ? 1 - lr * c.weightDecay : 1
            const [p2, m2, v2] = fusedAdamW(p, g[i], m[i], v[i], scale, { beta1: c.beta1, beta2: c.beta2, bc1, bc2, eps: c.eps, lr, decay })
            m[i].assign(m2)
            v[i].assign(v2)
            p.assign(p2)
            return
          }
          const gi = tf.mul(g[i], scale)
          m[i].assign(tf.add(tf.mul(m[i], c.beta1), tf.mul(gi, 1 - c.beta1)))
          v[i].assign(tf.add(tf.mul(v[i], c.beta2), tf.mul(tf.square(gi), 1 - c.beta2)))
          const update = tf.div(tf.div(m[i], bc1), tf.add(tf.sqrt(tf.div(v[i], bc2)), c.eps))
          const decayed = decays[i] && c.weightDecay > 0 ? tf.mul(p, 1 - lr * c.weightDecay) : p
          p.assign(tf.sub(decayed, tf.mul(update, lr)))
        })
        return value
      })
      const lossValue = (await lossTensor.data())[0]
      lossTensor.dispose()
      if (carried) for (const t of carried) t.dispose()
      carried = nextState
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
      const tokensPerSec = ((done - startStep) * tokensPerStep) / ((performance.now() - t0 - evalMs) / 1000)
      bar?.update(done, `loss ${lossValue.toFixed(4)} | ${Math.round(tokensPerSec)} tok/s`)
      if (done % c.logStep === 0 || done === c.totalStep) {
        finalLoss = recentLoss.reduce((a, b) => a + b, 0) / recentLoss.length
        recentLoss = []
        appendMetrics(metricsPath, { step: done, loss: finalLoss, lr, tokensPerSec: Math.round(tokensPerSec), time: Date.now() })
      }
      let newBest = false
      if (evalStep > 0 && (done % evalStep === 0 || done === c.totalStep)) {
        const evalStart = performance.now()
        // With random windows: the full pass is valLoss (deterministic, so it picks the best checkpoint).
        const score = validIds
          ? streamScore(streamLoss(model, vars, validIds, { ...c, evalIters: c.evalIters ?? 200, seed: c.seed + done }))
          : { ...(await validate(model, vars, tokenizer, opts.validSamples!, c.batchSize)), estimate: undefined }
        evalMs += performance.now() - evalStart
        const valLoss = score.natsPerToken
        const estimate: Record<string, number> = score.estimate !== undefined ? { valLossEstimate: score.estimate } : {}
        appendMetrics(metricsPath, { step: done, valPpl: score.ppl, valLoss, ...estimate })
        opts.onEval?.({ step: done, valPpl: score.ppl, valLoss, ...estimate })
        if (!best || valLoss < best.valLoss) {
          best = { step: done, valPpl: score.ppl, valLoss }
          newBest = true
        }
      }
      // The best evaluation always gets a checkpoint, even between checkpoint steps.
      if (newBest || done % c.ckptStep === 0 || done === c.totalStep) {
        await saveCheckpoint(dir, done, names, varList, m, v, { ...state(), position: data.position() })
        lastCkpt = done
      }
      if (newBest) await writeBest(dir, best!)
    }
  } catch (e) {
    for (const x of [...varList, ...m, ...v, ...(carried ?? [])]) x.dispose()
    if (!(e instanceof WriteError)) throw e
    // A full disk: checkpoints are renamed into place only when whole, so the last one is intact.
    bar?.done()
    const kept = lastCkpt >= 0 ? `the last complete checkpoint, step ${lastCkpt}, is intact (--resume continues from it)` : 'no checkpoint was written yet'
    throw new LmpError(`${e.message}; ${kept}`, e.status)
  }
  bar?.done()
  const tokensPerSec = ((c.totalStep - startStep) * tokensPerStep) / ((performance.now() - t0 - evalMs) / 1000)
  const weights: Record<string, Float32Array> = {}
  for (const [i, n] of names.entries()) weights[n] = (await varList[i].data()) as Float32Array
  for (const x of [...varList, ...m, ...v, ...(carried ?? [])]) x.dispose()
  return { model, weights, finalLoss, tokensPerSec, steps: c.totalStep, startStep, best }
}

function appendMetrics(path: string, entry: Record<string, number>) {
  appendLine(path, JSON.stringify(entry))
}

async function writeBest(dir: string, best: BestCheckpoint) {
  const checkpoint = `ckpt-${best.step}.safetensors`
  await writeFileAtomic(join(dir, 'best.json'), JSON.stringify({ ...best, checkpoint }, null, 2) + '\n')
}

const streamScore = (s: { full: number; ppl: number; estimate: number }) => ({ natsPerToken: s.full, ppl: s.ppl, estimate: s.estimate })

/**
 * Validation as src/infer/perplexity defines it (BOS never a target, PAD ignored, recurrent models over
 * whole texts, the Transformer by sliding windows), computed with the training weights in eval mode.
 */
async function validate(model: LanguageModel, params: Record<string, tf.Tensor>, tokenizer: Tokenizer, samples: string[], batchSize: number) {
  // Many rows per call: at these model sizes the cost is per TF.js op, not per row. The logits of one
  // call stay at a few MiB (rows × chunk × vocab floats, the chunk at least 16).
  const rows = Math.max(batchSize, Math.min(256, Math.floor(2 ** 20 / (16 * tokenizer.vocabSize))))
  return scoreTexts(evalStepModel(model, params, tokenizer.vocabSize), tokenizer, samples, { batchSize: rows })
}

/** The live TF.js weights as a StepModel, without copying them; no dropout. */
function evalStepModel(model: LanguageModel, params: Record<string, tf.Tensor>, vocabSize: number): StepModel {
  // A model with a position limit (the Transformer) is scored by sliding windows and carries nothing.
  const maxSeqLen = model.kind === 'transformer' ? model.config.maxSeqLen : null
  const o = new TfOps(params, false)
  return {
    manifest: { vocabSize, maxSeqLen } as Manifest,
    initState: () => [],
    async forward(ids, state) {
      const { logits, next } = tf.tidy(() => {
        const initial = state.length > 0 ? state.map((s) => tf.tensor(s.data, s.dims)) : undefined
        const out = forwardTf(model, o, ids, initial)
        const logits = (Array.isArray(out.logits) ? tf.stack(out.logits, 1) : out.logits) as tf.Tensor
        return { logits, next: maxSeqLen === null ? out.state : [] }
      })
      const read = async (t: tf.Tensor) => ({ data: (await t.data()) as Float32Array, dims: t.shape })
      const result = { logits: (await read(logits)).data, state: await Promise.all(next.map(read)) }
      tf.dispose([logits, ...next])
      return result
    },
  }
}

async function saveCheckpoint(
  dir: string, step: number, names: string[], params: tf.Variable[], m: tf.Variable[], v: tf.Variable[],
  s: { position: Position; recentLoss: number[]; best: BestCheckpoint | null; carried: tf.Tensor[] | null },
) {
  const asNamed = async (x: tf.Tensor): Promise<NamedTensor> => ({ dtype: 'F32', shape: x.shape, data: (await x.data()) as Float32Array })
  const weights: Record<string, NamedTensor> = {}
  const optim: Record<string, NamedTensor> = {}
  for (const [i, n] of names.entries()) {
    weights[n] = await asNamed(params[i])
    optim[`exp_avg.${n}`] = await asNamed(m[i])
    optim[`exp_avg_sq.${n}`] = await asNamed(v[i])
  }
  for (const [i, t] of (s.carried ?? []).entries()) optim[`tbptt_state.${i}`] = await asNamed(t)
  const meta: Record<string, string> = {
    step: String(step),
    epoch: String(s.position.epoch),
    cursor: String(s.position.cursor),
    // The losses since the last log line, so the next logged mean is the same after a resume.
    recent_loss: JSON.stringify(s.recentLoss),
  }
  if (s.best) meta.best = JSON.stringify(s.best)
  // The optimizer file first: a checkpoint counts for resume only once both files exist.
  await writeSafetensors(join(dir, `ckpt-${step}.optim.safetensors`), optim, meta)
  await writeSafetensors(checkpointPath(dir, step), weights, { step: String(step), format: 'pt' })
}

/** Steps with both files of a checkpoint, ascending. */
export function resumableSteps(dir: string): number[] {
  if (!existsSync(dir)) return []
  const files = new Set(readdirSync(dir))
  return [...files]
    .map((f) => /^ckpt-(\d+)\.optim\.safetensors$/.exec(f))
    .filter((x): x is RegExpExecArray => x !== null && files.has(`ckpt-${x[1]}.safetensors`))
    .map((x) => Number(x[1]))
    .sort((a, b) => a - b)
}

async function loadResumePoint(dir: string, totalStep: number): Promise<Saved> {
  const steps = resumableSteps(dir)
  if (steps.length === 0) throw new LmpError(`nothing to resume in ${dir}: no checkpoint with its optimizer state`)
  const step = steps[steps.length - 1]
  if (step >= totalStep) throw new LmpError(`${dir} is already trained to step ${step} (total_step ${totalStep}); nothing to resume`)
  const optimPath = join(dir, `ckpt-${step}.optim.safetensors`)
  const { tensors: optim, metadata } = await readSafetensors(optimPath)
  const { tensors: weights } = await readSafetensors(checkpointPath(dir, step))
  const int = (key: string) => {
    const n = Number(metadata[key])
    if (metadata[key] === undefined || !Number.isInteger(n)) throw new LmpError(`corrupt checkpoint ${optimPath}: no '${key}' in its metadata`)
    return n
  }
  if (int('step') !== step) throw new LmpError(`corrupt checkpoint ${optimPath}: its metadata says step ${metadata.step}`)
  const json = (key: string) => {
    try {
      return metadata[key] === undefined ? null : JSON.parse(metadata[key])
    } catch {
      throw new LmpError(`corrupt checkpoint ${optimPath}: '${key}' in its metadata is not JSON`)
    }
  }
  return {
    step,
    position: { epoch: int('epoch'), cursor: int('cursor') },
    recentLoss: json('recent_loss') ?? [],
    best: json('best'),
    weights,
    optim,
  }
}

function checkedTensor(tensors: Record<string, NamedTensor>, name: string, shape: number[], file: string): Float32Array {
  const t = tensors[name]
  if (!t) throw new LmpError(`cannot resume: ${file} has no '${name}' (was it trained with other model options?)`)
  if (t.dtype !== 'F32' || t.shape.join('x') !== shape.join('x')) {
    throw new LmpError(`cannot resume: '${name}' in ${file} is ${t.dtype} ${t.shape.join('x')}, expected F32 ${shape.join('x')}`)
  }
  return t.data as Float32Array
}

/**
 * Remove the checkpoints and metrics of steps after `step` (what a stopped run did past its checkpoint).
 * metrics.jsonl is replaced atomically: a kill meanwhile leaves the old log, never a truncated one.
 */
async function forgetAfter(dir: string, step: number) {
  for (const f of readdirSync(dir)) {
    const x = /^ckpt-(\d+)\.(optim\.)?safetensors$/.exec(f)
    if (x && Number(x[1]) > step) rmSync(join(dir, f))
  }
  const path = join(dir, 'metrics.jsonl')
  if (!existsSync(path)) return
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      try {
        return (JSON.parse(line) as { step: number }).step <= step
      } catch {
        return false // empty, or cut short by the kill
      }
    })
  await writeFileAtomic(path, kept.map((l) => l + '\n').join(''))
}
