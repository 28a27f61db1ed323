// Where a Transformer training step's time goes on wasm, kernel by kernel: MEASURED.md's reference GPT
// (2 pre-LN blocks, d 128, 4 heads, FF 512, context 64, batch 32 × 64) trained for a few steps with each
// kernel's CPU time recorded (process.cpuUsage around every call: other processes do not inflate it).
// Prints one JSON line per kernel name (CPU ms per step, calls per step, share of the step), biggest first,
// with the current paths and as before (wasm's Identity copying). The two runs are one after the other, not
// alternating: compare the kernels' shares here, and totals in bench/models.bench.ts.
// A kernel that calls another registered kernel inside is counted in both (LmpBatchedMatMul calls none).
// `npm run bench -- train-profile`; LMP_BENCH_STEPS sets the measured steps (default 8).
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initBackend } from '../models/backend.ts'
import { train } from '../models/train.ts'
import { MODEL_DEFAULTS, type ModelConfig } from '../models/lm.ts'
import { useSharedIdentity } from '../models/tf-ops.ts'
import { loadDataset } from '../src/data/index.ts'
import { createTokenizer } from '../src/tokenizer/index.ts'
import { report } from './util.ts'

// One thread: per-kernel CPU time is the kernel's own cost (a threaded pool's idle threads spin between kernels).
const backend = await initBackend('auto', { numThreads: 1 })
const shakespeare = new URL('../../shared/data/tinyshakespeare/input.txt', import.meta.url).pathname
const dset = existsSync(shakespeare) ? 'tiny-shakespeare' : 'demo'
const samples = await loadDataset(dset, 'train', dset === 'tiny-shakespeare' ? { dataPath: shakespeare } : {})
const tokenizer = createTokenizer('character', { isUncased: false })
tokenizer.buildVocab(samples)
const GPT: ModelConfig = {
  ...MODEL_DEFAULTS, model: 'Transformer', vocabSize: tokenizer.vocabSize, dModel: 128, nHead: 4, dFf: 512, nLyr: 2, maxSeqLen: 64,
  layout: 'pre-ln', positions: 'learned', activation: 'gelu',
}
const steps = Number(process.env.LMP_BENCH_STEPS ?? 8)
const warmup = 3

// Every registered kernel of this backend, wrapped once; `recording` says whether calls are counted now.
const perKernel = new Map<string, { ms: number; calls: number }>()
let recording = false
for (const k of tf.getKernelsForBackend(backend)) {
  const f = k.kernelFunc
  ;(k as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
    if (!recording) return f(args)
    const c0 = process.cpuUsage()
    const out = f(args)
    const used = process.cpuUsage(c0)
    const e = perKernel.get(k.kernelName) ?? { ms: 0, calls: 0 }
    e.ms += (used.user + used.system) / 1000
    e.calls++
    perKernel.set(k.kernelName, e)
    return out
  }
}

for (const [paths, on] of [['current', true], ['copying Identity (before)', false]] as const) {
  useSharedIdentity(on)
  perKernel.clear()
  let stepCpuMs = 0
  let cpu = process.cpuUsage()
  await train({
    dir: mkdtempSync(join(tmpdir(), 'lmp-profile-')), modelConfig: GPT, tokenizer, samples: samples.slice(0, 2000), quiet: true,
    trainConfig: {
      batchSize: 32, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1, maxSeqLen: 64, stride: 64,
      totalStep: warmup + steps, warmupStep: 1, ckptStep: 10_000, logStep: 10_000, seed: 1,
    },
    onStep: ({ step }) => {
      const used = process.cpuUsage(cpu)
      cpu = process.cpuUsage()
      if (step > warmup) stepCpuMs += (used.user + used.system) / 1000
      recording = step >= warmup // from the first measured step on
    },
  })
  recording = false
  const step = stepCpuMs / steps
  const rows = [...perKernel.entries()].sort((a, b) => b[1].ms - a[1].ms)
  report('train-profile', { model: 'Transformer (2 pre-LN blocks, d 128, 4 heads, FF 512, context 64)', paths, backend, steps,
    cpuMsPerStep: +step.toFixed(1), kernelCallsPerStep: Math.round(rows.reduce((a, [, e]) => a + e.calls, 0) / steps) })
  for (const [kernel, e] of rows.slice(0, 15)) {
    report('train-profile', { paths, kernel, cpuMsPerStep: +(e.ms / steps).toFixed(2), callsPerStep: +(e.calls / steps).toFixed(1), shareOfStep: +(e.ms / steps / step).toFixed(3) })
  }
}
useSharedIdentity(true)
