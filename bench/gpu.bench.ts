// The GPU check (`npm run bench -- gpu`, or bench/gpu.sh on a machine without Node.js on its PATH):
// 1. what this machine offers: the WebGPU adapter Dawn finds (`webgpu` package and onnxruntime-node's
//    WebGPU EP), whether it is a fallback (software) adapter, NVIDIA GPUs (nvidia-smi), and whether the
//    CUDA paths load (onnxruntime-node's CUDA EP, tfjs-node-gpu);
// 2. training tokens/s on TF.js webgpu beside wasm (same run, alternating rounds) for MEASURED.md's
//    reference GPT (batch 32 × 64) and the GPT-2 small shape (12 layers, d_model 768, 12 heads, context
//    256, batch 1 × 256, random weights);
// 3. onnxruntime-node WebGPU EP beside the CPU EP (and CUDA where it loads): forward tokens/s of a full
//    context and generation µs/token with the key/value cache, batch 1, same models.
// Every line is JSON; a line on a software adapter says `software_adapter: true`. Exits 0 when something
// is missing (it is reported); LMP_BENCH_ROUNDS (default 2) and LMP_BENCH_GPT2=0 (skip GPT-2 small)
// shorten it. It must finish within 8 minutes on a GPU machine.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { gpuAdapter, initBackend } from '../models/backend.ts'
import { createModel, initWeights, MODEL_DEFAULTS, type ModelConfig } from '../models/lm.ts'
import { train } from '../models/train.ts'
import { probeAdapter } from '../models/webgpu.ts'
import { serialize } from '../onnx/export.ts'
import { checkWebGpu } from '../src/infer/device.ts'
import { loadOrtModel } from '../src/infer/ort-model.ts'
import { createRng } from '../src/infer/rng.ts'
import type { StepModel } from '../src/infer/types.ts'
import { demoSamples } from '../src/data/demo.ts'
import { createTokenizer } from '../src/tokenizer/index.ts'
import { median, report } from './util.ts'

const started = Date.now()
const rounds = Number(process.env.LMP_BENCH_ROUNDS ?? 2)
const firstLine = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0]

// --- what is here ---------------------------------------------------------------------------------
// Dawn wants a runtime folder; with no adapter from the machine's own Vulkan drivers, Chromium's
// SwiftShader (Debian's chromium package) stands in, and every line says it is a software adapter.
process.env.XDG_RUNTIME_DIR ||= mkdtempSync(join(tmpdir(), 'lmp-xdg-'))
const probe = () => probeAdapter().then((a) => a, (err) => ({ error: firstLine(err) }))
let adapter: Awaited<ReturnType<typeof probe>> = await probe()
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json'
if ('error' in adapter && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER
  adapter = await probe()
}
const software = 'fallback' in adapter ? adapter.fallback : undefined
const ortWebgpu = await checkWebGpu().then(() => 'ok', firstLine)
let nvidia = 'nvidia-smi not found'
try {
  nvidia = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 20_000 }).trim()
} catch { /* no NVIDIA driver */ }
const tinyBytes = (() => {
  const tok = createTokenizer('character')
  tok.buildVocab(['ab'])
  const m = createModel({ ...MODEL_DEFAULTS, model: 'LSTM-2000', vocabSize: tok.vocabSize })
  const rng = createRng(1)
  const params = m.params()
  const w: Record<string, { shape: number[]; data: Float32Array }> = {}
  for (const [k, data] of Object.entries(initWeights(m, () => rng.next()))) w[k] = { shape: params[k].shape, data }
  return serialize(m, w)
})()
ort.env.logLevel = 'fatal'
const ortCuda = await loadOrtModel(ort as never, tinyBytes.bytes, tinyBytes.manifest, { executionProviders: ['cuda'] })
  .then(async (m) => { await m.release?.(); return 'ok' }, firstLine)
ort.env.logLevel = 'warning'
const tfjsNodeGpu = await import('@tensorflow/tfjs-node-gpu' as string).then(() => 'ok', firstLine)
report('gpu.devices', { webgpu_adapter: adapter, software_adapter: software, ort_webgpu_ep: ortWebgpu, ort_cuda_ep: ortCuda, tfjs_node_gpu: tfjsNodeGpu, nvidia_smi: nvidia })

// --- models ---------------------------------------------------------------------------------------
const samples = demoSamples('train')
const tokenizer = createTokenizer('character', { isUncased: false })
tokenizer.buildVocab(samples)
const vocabSize = tokenizer.vocabSize
const GPT: ModelConfig = {
  ...MODEL_DEFAULTS, model: 'Transformer', vocabSize, dModel: 128, nHead: 4, dFf: 512, nLyr: 2, maxSeqLen: 64,
  layout: 'pre-ln', positions: 'learned', activation: 'gelu',
}
const GPT2_SMALL: ModelConfig = { ...GPT, dModel: 768, nHead: 12, dFf: 3072, nLyr: 12, maxSeqLen: 256 }
const shapes: { name: string; config: ModelConfig; batch: number; context: number; rounds: number; big: boolean }[] = [
  { name: 'reference GPT (2 layers, d 128)', config: GPT, batch: 32, context: 64, rounds, big: false },
  ...(process.env.LMP_BENCH_GPT2 === '0' ? [] : [{ name: 'GPT-2 small shape (12 layers, d 768)', config: GPT2_SMALL, batch: 1, context: 256, rounds: 1, big: true }]),
]
// GPT-2 small on a software adapter takes many minutes a step: only when asked (LMP_BENCH_GPT2=1); the
// reference GPT trains 2 rows a step there (both backends, so the two figures stay comparable).
const skipBigOnSoftware = software === true && process.env.LMP_BENCH_GPT2 !== '1'
if (software) for (const s of shapes) if (!s.big) s.batch = 2

// --- training: webgpu beside wasm -----------------------------------------------------------------
const canTrainOnGpu = !('error' in adapter)
for (const s of shapes) {
  const ms: Record<string, number[]> = { wasm: [], webgpu: [] }
  // GPT-2 small does not train on wasm: weights, gradients and Adam's two moments alone are 2 GB of its
  // 32-bit heap, and the run ends in 'memory access out of bounds'.
  const gpu = canTrainOnGpu && !(s.big && skipBigOnSoftware)
  const backends = s.big ? (gpu ? ['webgpu'] as const : [] as const) : gpu ? ['wasm', 'webgpu'] as const : ['wasm'] as const
  for (let r = 0; r < s.rounds; r++) {
    for (const backend of backends) {
      await initBackend(backend)
      const steps: number[] = []
      const trainConfig = {
        batchSize: s.batch, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1, maxSeqLen: s.context,
        stride: s.context, totalStep: s.big ? 2 : 3, warmupStep: 1, ckptStep: 10_000, logStep: 10_000, seed: 1,
      }
      // The first step compiles shaders (webgpu) and warms caches: left out.
      await train({ dir: mkdtempSync(join(tmpdir(), 'lmp-gpu-bench-')), modelConfig: s.config, trainConfig, tokenizer, samples, quiet: true, onStep: (x) => steps.push(x.ms) })
      ms[backend].push(...steps.slice(1))
    }
  }
  const tps = (xs: number[]) => (xs.length ? Math.round((s.batch * s.context) / (median(xs) / 1000)) : null)
  report('gpu.train', {
    model: s.name, batch: s.batch, context: s.context, wasm_tokens_per_s: tps(ms.wasm), webgpu_tokens_per_s: tps(ms.webgpu),
    webgpu_adapter: gpuAdapter?.name ?? null, software_adapter: gpuAdapter?.fallback ?? software ?? null, steps_measured: Math.max(ms.wasm.length, ms.webgpu.length),
    ...(s.big ? { wasm_skipped: 'does not fit the wasm heap (memory access out of bounds)' } : {}),
    ...(!gpu ? { webgpu_skipped: canTrainOnGpu ? 'a software adapter (LMP_BENCH_GPT2=1 runs it)' : 'no WebGPU adapter' } : {}),
  })
}

// --- inference: WebGPU EP (and CUDA EP) beside the CPU EP ----------------------------------------
async function timeModel(m: StepModel, context: number, tokens: number) {
  const ids = Array.from({ length: context }, (_, i) => 2 + (i % (vocabSize - 2)))
  let t = performance.now()
  const { state } = await m.forward([ids], m.initState(1))
  const forwardMs = performance.now() - t
  let carried = state
  const stepMs: number[] = []
  for (let i = 0; i < tokens; i++) {
    t = performance.now()
    carried = (await m.forward([[3]], carried)).state
    stepMs.push(performance.now() - t)
  }
  return { forwardMs, stepUs: median(stepMs.slice(1)) * 1000 }
}

for (const s of shapes) {
  const model = createModel(s.config)
  const rng = createRng(2)
  const params = model.params()
  const weights: Record<string, { shape: number[]; data: Float32Array }> = {}
  for (const [k, data] of Object.entries(initWeights(model, () => rng.next()))) weights[k] = { shape: params[k].shape, data }
  const { bytes, manifest } = serialize(model, weights)
  const eps = ['cpu', ...(ortWebgpu === 'ok' && !(s.big && skipBigOnSoftware) ? ['webgpu'] : []), ...(ortCuda === 'ok' ? ['cuda'] : [])]
  const sessions: Record<string, StepModel> = {}
  for (const ep of eps) sessions[ep] = await loadOrtModel(ort as never, bytes, manifest, { executionProviders: [ep] })
  const gen = 32
  const prefill = s.config.maxSeqLen - gen // the generated tokens fit in the context
  const fwd: Record<string, number[]> = {}
  const step: Record<string, number[]> = {}
  for (const ep of eps) await timeModel(sessions[ep], prefill, 2) // warm-up (shader compilation)
  for (let r = 0; r < s.rounds + 1; r++) {
    for (const ep of eps) {
      const x = await timeModel(sessions[ep], prefill, gen)
      ;(fwd[ep] ??= []).push(x.forwardMs)
      ;(step[ep] ??= []).push(x.stepUs)
    }
  }
  for (const ep of eps) {
    report('gpu.generate', {
      model: s.name, execution_provider: ep, prefill_tokens: prefill, forward_tokens_per_s: Math.round(prefill / (median(fwd[ep]) / 1000)),
      generation_us_per_token: Math.round(median(step[ep])), software_adapter: ep === 'webgpu' ? software ?? null : null,
    })
    await sessions[ep].release?.()
  }
}
report('gpu.done', { seconds: Math.round((Date.now() - started) / 1000) })
