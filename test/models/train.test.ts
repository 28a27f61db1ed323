// models/train.ts: schedules, weight-decay groups, label smoothing, truncated BPTT, validation with the
// best checkpoint, exact resume, NaN stop and metrics.jsonl — through the real trainer on tiny models.
import t from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initBackend } from '../../models/backend.ts'
import { createModel, forwardTf, initWeights, MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { TfOps } from '../../models/tf-ops.ts'
import { tfStepModel } from '../../models/tf-step-model.ts'
import { readSafetensors } from '../../models/safetensors.ts'
import {
  buildWindows, isDecayed, learningRate, resumableSteps, shuffledWindows, tbpttStreams, train, validateTrainConfig, type TrainConfig,
} from '../../models/train.ts'
import { loadDataset } from '../../src/data/index.ts'
import { createRng } from '../../src/infer/rng.ts'
import { scoreTexts } from '../../src/infer/perplexity.ts'
import { serialize } from '../../onnx/export.ts'
import { BOS_ID, createTokenizer, EOS_ID, IGNORE_INDEX, PAD_ID } from '../../src/tokenizer/index.ts'
import { LmpError } from '../../src/errors.ts'
import { loadGpt2Sync } from '../../src/tokenizer/io.ts'

await initBackend()
const samples = (await loadDataset('demo', 'train')).slice(0, 400)
const valid = (await loadDataset('demo', 'valid')).slice(0, 150)
const tokenizer = createTokenizer('character', { isUncased: true })
tokenizer.buildVocab(samples)

const modelConfig = (over: Partial<ModelConfig> = {}) =>
  ({ ...MODEL_DEFAULTS, model: 'LSTM-2000', vocabSize: tokenizer.vocabSize, dEmb: 8, nBlk: 6, dBlk: 2, nLyr: 1, ...over }) as ModelConfig
const trainConfig = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  batchSize: 8, lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1, maxSeqLen: 16, stride: 16,
  totalStep: 20, warmupStep: 3, ckptStep: 5, logStep: 1, seed: 3, ...over,
})
const tempDir = () => mkdtempSync(join(tmpdir(), 'lmp-train-'))

/** Run the trainer; `stopAt` makes it die right after that step's update (before its log and checkpoint). */
async function run(dir: string, m: ModelConfig, c: TrainConfig, opts: { stopAt?: number; resume?: boolean; samples?: string[] } = {}) {
  const losses = new Map<number, number>()
  try {
    const result = await train({
      dir, modelConfig: m, trainConfig: c, tokenizer, samples: opts.samples ?? samples, validSamples: valid, quiet: true, resume: opts.resume,
      onStep: ({ step, loss }) => {
        losses.set(step, loss)
        if (step === opts.stopAt) throw new Error('killed')
      },
    })
    return { losses, result }
  } catch (e) {
    if ((e as Error).message !== 'killed') throw e
    return { losses, result: null }
  }
}

const readMetrics = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>)
/** Metrics without the wall-clock fields, which differ from run to run. */
const stable = (rows: Record<string, number>[]) => rows.map(({ time, tokensPerSec, ...rest }) => rest)

/** Per-step logits [step][row][vocab] of the model with the given weights, no dropout. */
function logitsOf(m: ModelConfig, weights: Record<string, Float32Array>, ids: number[][]): number[][][] {
  const model = createModel(m)
  return tf.tidy(() => {
    const params: Record<string, tf.Tensor> = {}
    for (const [n, spec] of Object.entries(model.params())) params[n] = tf.tensor(weights[n], spec.shape)
    const { logits } = forwardTf(model, new TfOps(params, false), ids)
    const all = (Array.isArray(logits) ? tf.stack(logits, 1) : logits) as tf.Tensor3D
    const rows = all.arraySync() // [row][step][vocab]
    return ids[0].map((_, s) => rows.map((r) => r[s]))
  })
}

/** lmp's loss by hand: mean over the targets not ignored (IGNORE_INDEX) of -((1-ε) log p(y) + ε/V Σ log p). */
function handLoss(logits: number[][][], targets: number[][], eps: number): number {
  let total = 0
  let count = 0
  logits.forEach((rows, s) =>
    rows.forEach((row, b) => {
      const y = targets[b][s]
      if (y < 0) return
      const max = Math.max(...row)
      const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0))
      const logp = row.map((x) => x - lse)
      total -= (1 - eps) * logp[y] + (eps / row.length) * logp.reduce((a, x) => a + x, 0)
      count++
    }),
  )
  return total / count
}

const initialWeights = (m: ModelConfig, seed: number) => {
  const rng = createRng(seed)
  return initWeights(createModel(m), () => rng.next())
}

t.test('learning-rate schedules', async (t) => {
  const c = { lr: 1, warmupStep: 4, totalStep: 14 }
  t.same([0, 1, 2, 3].map((s) => learningRate(c, s)), [0.25, 0.5, 0.75, 1], 'linear warmup, never 0')
  t.equal(learningRate(c, 4), 1)
  t.equal(learningRate(c, 9), 0.5, 'linear: half way')
  t.equal(learningRate(c, 13), 0.1)
  t.ok(Math.abs(learningRate({ ...c, minLr: 0.2 }, 9) - 0.6) < 1e-12, 'linear decays to min_lr')
  const cos = { ...c, lrSchedule: 'cosine' as const, minLr: 0.2 }
  t.same([0, 1, 2, 3].map((s) => learningRate(cos, s)), [0.25, 0.5, 0.75, 1], 'cosine keeps the warmup')
  t.equal(learningRate(cos, 4), 1, 'cosine starts at lr')
  t.ok(Math.abs(learningRate(cos, 9) - 0.6) < 1e-12, 'cosine: half way is the mean of lr and min_lr')
  t.ok(Math.abs(learningRate(cos, 14) - 0.2) < 1e-12, 'cosine ends at min_lr')
  t.ok(learningRate(cos, 6) > learningRate(c, 6), 'cosine decays slower than linear early on')
  t.ok(learningRate(cos, 12) < learningRate({ ...c, minLr: 0.2 }, 12), 'and faster late')
  for (let s = 4; s < 13; s++) t.ok(learningRate(cos, s + 1) < learningRate(cos, s), `cosine decreases at step ${s}`)
  t.throws(() => validateTrainConfig(trainConfig({ minLr: 1 })), /must have 0 <= min_lr <= lr/, 'min_lr above lr')
  t.throws(() => validateTrainConfig(trainConfig({ lrSchedule: 'step' as any })), /lr_schedule must be one of linear, cosine/)
  t.throws(() => validateTrainConfig(trainConfig({ evalStep: -1 })), /eval_step/)
})

t.test('weight decay skips biases and LayerNorm gains', async (t) => {
  for (const n of ['fc_e2h.bias', 'stack_rnn.0.fc_x2ig.bias', 'h.0.ln_1.weight', 'h.0.ln_2.bias', 'ln_f.weight', 'encoder.layer_norm.weight']) {
    t.notOk(isDecayed(n), `${n}: no decay`)
  }
  for (const n of ['emb.weight', 'fc_e2h.weight', 'stack_rnn.0.pc_c2ig', 'h.0.attn.c_attn.weight', 'wte.weight', 'wpe.weight', 'h.0.mlp.c_fc.weight']) {
    t.ok(isDecayed(n), `${n}: decayed`)
  }

  // One step with and without decay: the same Adam update, so decayed weights differ by lr·wd·w0 and the
  // others not at all.
  const models = [modelConfig({ model: 'LSTM-2002' }), modelConfig({ model: 'Transformer', dModel: 8, nHead: 2, dFf: 16, nLyr: 1 })]
  for (const m of models) {
    const c = trainConfig({ totalStep: 1, warmupStep: 1, ckptStep: 1, lr: 0.01 })
    const wd = 0.5
    const plain = await train({ dir: tempDir(), modelConfig: m, trainConfig: c, tokenizer, samples, quiet: true })
    const decayed = await train({ dir: tempDir(), modelConfig: m, trainConfig: { ...c, weightDecay: wd }, tokenizer, samples, quiet: true })
    const w0 = initialWeights(m, c.seed)
    const skipped: string[] = []
    for (const name of Object.keys(w0)) {
      const a = plain.weights[name]
      const b = decayed.weights[name]
      const same = a.every((x, i) => x === b[i])
      const err = Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i] - c.lr * wd * w0[name][i])))
      if (same) skipped.push(name)
      else t.ok(err < 1e-6, `${m.model} ${name} decays by lr·wd·w (max error ${err.toExponential(1)})`)
    }
    t.same(skipped, Object.keys(w0).filter((n) => !isDecayed(n)), `${m.model}: exactly the parameters isDecayed excludes are not decayed`)
    const expected = m.model === 'Transformer' ? ['h.0.ln_1.weight', 'h.0.ln_2.weight', 'ln_f.weight', 'h.0.attn.c_attn.bias'] : ['fc_e2h.bias', 'stack_rnn.0.fc_x2fg.bias']
    for (const n of expected) t.ok(skipped.includes(n), `${m.model}: ${n} not decayed`)
    t.notOk(skipped.includes(m.model === 'Transformer' ? 'wte.weight' : 'emb.weight'), 'the embedding is decayed')
  }
})

t.test('label smoothing is applied to the training loss', async (t) => {
  // A wide init, so that the logits are far from uniform (where smoothing changes little).
  const m = modelConfig({ labelSmoothing: 0.2, initLower: -1, initUpper: 1 })
  const c = trainConfig({ totalStep: 1, warmupStep: 1, ckptStep: 1 })
  const { losses } = await run(tempDir(), m, c)
  const batch = shuffledWindows(samples, tokenizer, c).next()
  const logits = logitsOf(m, initialWeights(m, c.seed), batch.inputs)
  const expected = handLoss(logits, batch.targets, 0.2)
  t.ok(Math.abs(losses.get(1)! - expected) < 1e-5, `step 1 loss ${losses.get(1)} = smoothed cross-entropy ${expected}`)
  t.ok(Math.abs(handLoss(logits, batch.targets, 0) - expected) > 1e-3, 'which differs from the unsmoothed one')
})

t.test("gpt2's <|endoftext|> is both BOS and EOS: one between samples in a stream, and EOS targets are trained", async (t) => {
  loadGpt2Sync()
  const tk = createTokenizer('gpt2')
  const eot = tk.specialIds.eos
  t.equal(tk.specialIds.bos, eot)
  const texts = ['Hello there, world', 'A second sample here', 'and a third one']
  const d = tbpttStreams(texts, tk, 1, 4)
  const stream: number[] = []
  const targets: number[] = []
  for (let k = 0; k < d.windowsPerEpoch; k++) {
    const b = d.next()
    if (k === 0) stream.push(b.inputs[0][0])
    stream.push(...b.targets[0])
    targets.push(...b.targets[0])
  }
  const joined = [eot, ...texts.flatMap((x) => [...tk.enc(x).slice(1, -1), eot])]
  t.same(stream, joined.slice(0, stream.length), 'one <|endoftext|> between two samples, as GPT-2 was trained')
  t.ok(targets.includes(eot) && !targets.includes(IGNORE_INDEX), 'every target is trained, <|endoftext|> included')
  const w = buildWindows(texts, tk, 4, 4)
  t.same(w.inputs[0], tk.enc(texts[0]).slice(0, 4), 'a window starts at the BOS (which is EOS too) and is kept')
  t.equal(w.targets.flat().filter((id) => id === eot).length, texts.length, "each sample's EOS is a target")
  t.ok(w.targets.flat().every((id) => id !== tk.specialIds.pad), 'PAD is never a target')
})

t.test('truncated BPTT: contiguous streams, one row each', async (t) => {
  const tk = createTokenizer('character', {})
  const texts = ['abc', 'de', 'fghij', 'klmn', 'opq', 'rstuvw', 'xyz', 'a']
  tk.buildVocab(texts)
  const ids = texts.flatMap((x) => tk.enc(x))
  const B = 2
  const L = 3
  const streamLen = Math.floor(ids.length / B)
  const d = tbpttStreams(texts, tk, B, L)
  t.equal(d.windowsPerEpoch, Math.floor((streamLen - 1) / L))
  const seen = []
  for (let k = 0; k < d.windowsPerEpoch + 1; k++) seen.push(d.next())
  for (let k = 0; k < d.windowsPerEpoch; k++) {
    for (let b = 0; b < B; b++) {
      const at = b * streamLen + k * L
      t.same(seen[k].inputs[b], ids.slice(at, at + L), `step ${k} row ${b}: the stream's k-th window`)
      t.same(seen[k].targets[b], ids.slice(at + 1, at + L + 1).map((id) => (id === BOS_ID || id === PAD_ID ? IGNORE_INDEX : id)), 'targets: the next ids (BOS and PAD ignored)')
    }
    t.equal(seen[k].fresh, k === 0, 'only the first window of an epoch starts from the zero state')
  }
  t.ok(seen.slice(0, -1).some((s) => s.inputs.flat().includes(EOS_ID)), 'the streams run across sample boundaries')
  t.ok(seen.every((s) => !s.targets.flat().includes(BOS_ID)), 'BOS is never a target')
  t.same(seen[d.windowsPerEpoch], { ...seen[0] }, 'the next epoch starts over')
  // A position read back continues the same order.
  const a = tbpttStreams(texts, tk, B, L)
  a.next()
  const b = tbpttStreams(texts, tk, B, L)
  b.seek(a.position())
  t.same(b.next(), a.next(), 'seek(position()) continues identically')
  t.throws(() => tbpttStreams(texts, tk, 8, 8), /too short/)

  const s1 = shuffledWindows(samples, tokenizer, trainConfig({ batchSize: 150 }))
  for (let i = 0; i < 3; i++) s1.next() // crosses an epoch (400 windows)
  const s2 = shuffledWindows(samples, tokenizer, trainConfig({ batchSize: 150 }))
  s2.seek(s1.position())
  t.same(s2.next(), s1.next(), 'shuffled windows: seek(position()) continues identically')
})

t.test('truncated BPTT carries the state from step to step', async (t) => {
  const m = modelConfig({ model: 'GRU', dHid: 12, initLower: -1, initUpper: 1 })
  // A learning rate too small to change a float32 weight: the second loss must be that of the same
  // weights over both windows joined, from the zero state.
  const c = trainConfig({ tbptt: true, totalStep: 2, warmupStep: 1, ckptStep: 2, lr: 1e-30 })
  const { losses } = await run(tempDir(), m, c)
  const d = tbpttStreams(samples, tokenizer, c.batchSize, c.maxSeqLen)
  const [b1, b2] = [d.next(), d.next()]
  const w = initialWeights(m, c.seed)
  const joined = logitsOf(m, w, b1.inputs.map((row, i) => [...row, ...b2.inputs[i]]))
  t.ok(Math.abs(losses.get(1)! - handLoss(joined.slice(0, c.maxSeqLen), b1.targets, 0)) < 1e-5, 'step 1')
  const carried = handLoss(joined.slice(c.maxSeqLen), b2.targets, 0)
  const fresh = handLoss(logitsOf(m, w, b2.inputs), b2.targets, 0)
  t.ok(Math.abs(losses.get(2)! - carried) < 1e-5, `step 2 loss ${losses.get(2)} = loss with the carried state ${carried}`)
  t.ok(Math.abs(fresh - carried) > 1e-4, `not the loss from a zero state (${fresh})`)
})

t.test('validation perplexity, the best checkpoint and metrics.jsonl', async (t) => {
  const dir = tempDir()
  const m = modelConfig()
  const c = trainConfig({ totalStep: 14, ckptStep: 10, logStep: 4, evalStep: 3, lr: 0.02 })
  const before = tf.memory().numTensors
  const { result } = await run(dir, m, c)
  t.equal(tf.memory().numTensors, before, 'no tensor left behind')
  // The Transformer too: on wasm its LayerNorm, GELU and AdamW run as our kernels (models/wasm-kernels.ts).
  await run(tempDir(), modelConfig({ model: 'Transformer', dModel: 8, nHead: 2, dFf: 16, nLyr: 1, maxSeqLen: 16 }), c)
  t.equal(tf.memory().numTensors, before, 'no tensor left behind by the Transformer')
  const rows = readMetrics(dir)
  const logs = rows.filter((r) => 'loss' in r)
  const evals = rows.filter((r) => 'valPpl' in r)
  t.same(logs.map((r) => r.step), [4, 8, 12, 14], 'a log line every log_step and at the end')
  for (const r of logs) {
    t.same(Object.keys(r).sort(), ['loss', 'lr', 'step', 'time', 'tokensPerSec'])
    t.ok(r.loss > 0 && r.loss < 10 && r.tokensPerSec > 0 && Math.abs(r.time - Date.now()) < 600_000, `step ${r.step}: sane values`)
    t.equal(r.lr, learningRate(c, r.step - 1), `step ${r.step}: the lr of that step`)
  }
  t.same(evals.map((r) => r.step), [3, 6, 9, 12, 14], 'an evaluation every eval_step and at the end')
  for (const r of evals) {
    t.same(Object.keys(r).sort(), ['step', 'valLoss', 'valPpl'])
    t.ok(Math.abs(r.valPpl - Math.exp(r.valLoss)) < 1e-9 * r.valPpl, 'valPpl = exp(valLoss)')
  }
  // The last evaluation equals perplexity as src/infer defines it, on the final weights.
  const weights = Object.fromEntries(Object.entries(result!.model.params()).map(([n, s]) => [n, { shape: s.shape, data: result!.weights[n] }]))
  const ref = await scoreTexts(tfStepModel(result!.model, weights, serialize(result!.model, weights).manifest), tokenizer, valid)
  t.ok(Math.abs(evals.at(-1)!.valPpl - ref.ppl) < 1e-6 * ref.ppl, `final valPpl ${evals.at(-1)!.valPpl} = scoreTexts ${ref.ppl}`)

  const best = JSON.parse(readFileSync(join(dir, 'best.json'), 'utf8'))
  const lowest = evals.reduce((a, b) => (b.valLoss < a.valLoss ? b : a))
  t.same(best, { step: lowest.step, valPpl: lowest.valPpl, valLoss: lowest.valLoss, checkpoint: `ckpt-${lowest.step}.safetensors` }, 'best.json names the lowest validation loss')
  t.same(result!.best, { step: lowest.step, valPpl: lowest.valPpl, valLoss: lowest.valLoss })
  t.ok(existsSync(join(dir, best.checkpoint)), 'its checkpoint exists')
  const ckpts = readdirSync(dir).filter((f) => /^ckpt-\d+\.safetensors$/.test(f))
  for (const r of evals) {
    const improved = evals.filter((e) => e.step <= r.step).every((e) => e.valLoss >= r.valLoss)
    if (improved) t.ok(ckpts.includes(`ckpt-${r.step}.safetensors`), `step ${r.step} improved: its checkpoint is kept`)
  }

  t.rejects(train({ dir: tempDir(), modelConfig: m, trainConfig: c, tokenizer, samples, quiet: true }), /eval_step needs validation samples/)
})

// Dropout on, a log window that straddles the checkpoints, evaluations, and (few samples) a new epoch
// after the resume point: everything must come back.
const resumeCases: [string, ModelConfig, TrainConfig][] = [
  ['shuffled windows', modelConfig({ pEmb: 0.1, pHid: 0.1, nLyr: 2 }), trainConfig({ logStep: 3, evalStep: 6, weightDecay: 0.1, lrSchedule: 'cosine' })],
  ['truncated BPTT', modelConfig({ model: 'Elman-Net', dHid: 12, pEmb: 0.1, pHid: 0.1, nLyr: 2 }), trainConfig({ tbptt: true })],
]
for (const [what, m, c] of resumeCases) {
  t.test(`resume (${what}) gives the loss curve of an uninterrupted run`, async (t) => {
    const few = samples.slice(0, 50)
    const whole = tempDir()
    const full = await run(whole, m, c, { samples: few })
    const broken = tempDir()
    const first = await run(broken, m, c, { stopAt: 13, samples: few })
    t.equal(first.result, null, 'the first run died at step 13')
    // Dying between a checkpoint's two files leaves a checkpoint that does not count.
    const complete = resumableSteps(broken)
    t.ok(complete.length >= 2 && complete.at(-1)! <= 12, `complete checkpoints: ${complete.join(', ')}`)
    rmSync(join(broken, `ckpt-${complete.at(-1)}.safetensors`))
    const from = complete.at(-2)!
    const second = await run(broken, m, c, { resume: true, samples: few })
    t.equal(second.result!.startStep, from, `resumed from the last complete checkpoint, ${from}`)
    t.same([...second.losses.keys()], Array.from({ length: 20 - from }, (_, i) => from + 1 + i), `steps ${from + 1}..20 ran again`)
    for (const [step, loss] of second.losses) t.equal(loss, full.losses.get(step), `step ${step}: the same loss`)
    t.same(stable(readMetrics(broken)), stable(readMetrics(whole)), 'the same metrics.jsonl')
    const files = (d: string) => readdirSync(d).filter((f) => !f.startsWith('.')).sort()
    t.same(files(broken), files(whole), 'the same files')
    if (c.evalStep) t.same(readFileSync(join(broken, 'best.json'), 'utf8'), readFileSync(join(whole, 'best.json'), 'utf8'), 'the same best.json')
    for (const n of Object.keys(full.result!.weights)) {
      t.ok(full.result!.weights[n].every((x, i) => x === second.result!.weights[n][i]), `${n}: the same final weights`)
    }
    await t.rejects(run(broken, m, c, { resume: true, samples: few }), /already trained to step 20/)
    await t.rejects(run(tempDir(), m, c, { resume: true, samples: few }), /nothing to resume/)
  })
}

t.test('a NaN/Inf loss stops training and keeps the last good checkpoint', async (t) => {
  const dir = tempDir()
  const c = trainConfig({ lr: 1e20, warmupStep: 1, ckptStep: 1, totalStep: 10 })
  const err = await run(dir, modelConfig(), c).catch((e) => e)
  t.ok(err instanceof LmpError, 'an LmpError (one line for the user)')
  t.match(err.message, /^loss became (NaN|-?Infinity) at step (\d+); stopped \(last good checkpoint: step \d+\): try a lower --lr/)
  const bad = Number(/at step (\d+)/.exec(err.message)![1])
  const good = Number(/checkpoint: step (\d+)/.exec(err.message)![1])
  t.equal(good, bad - 1)
  t.ok(existsSync(join(dir, `ckpt-${good}.safetensors`)) && existsSync(join(dir, `ckpt-${good}.optim.safetensors`)), 'the last good checkpoint is there')
  t.notOk(existsSync(join(dir, `ckpt-${bad}.safetensors`)), 'no checkpoint of the bad step')
  const { tensors } = await readSafetensors(join(dir, `ckpt-${good}.safetensors`))
  t.ok(Object.values(tensors).every((x) => (x.data as Float32Array).every(Number.isFinite)), 'its weights are finite')
  t.ok(readMetrics(dir).every((r) => r.step < bad && Number.isFinite(r.loss)), 'no metrics line for the bad step')
})
