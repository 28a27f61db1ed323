// `npm run bench -- gpt2-small`: training GPT-2 small's shape (12 layers, 12 heads, d_model 768, d_ff 3,072,
// 1,024 positions, GPT-2's vocabulary with our specials: 124M parameters, random weights) on Tiny
// Shakespeare with the gpt2 tokenizer, context 256, on each TF.js backend: training tokens/s (median step,
// the first step left out: it compiles shaders and warms caches), peak RSS and the backend's own memory
// numbers (tf.memory(): bytes held by tensors, and on webgpu its GPU buffers). Each backend runs in its own
// process (a wasm heap that overflows must not take the others down, and peak RSS is per process); one that
// does not load or fails prints its one-line reason as a JSON line. The pure-JS cpu backend takes many
// minutes a step: skipped unless LMP_BENCH_CPU=1. LMP_BENCH_STEPS (default 3), LMP_BENCH_BATCH (default 1),
// LMP_BENCH_TIMEOUT_S (per backend, default 1,800). webgpu without a GPU runs on SwiftShader when Debian's
// chromium is installed (as bench/gpu.bench.ts): a software Vulkan, so its numbers say nothing of a GPU.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { report, median } from './util.ts'

const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const
const SHAKESPEARE = fileURLToPath(new URL('../../shared/data/tinyshakespeare/input.txt', import.meta.url))
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json'
const firstLine = (err: unknown) => String((err as Error)?.message ?? err).split('\n').find((l) => l.trim()) ?? String(err)

async function runOne(backend: string) {
  const tf = await import('@tensorflow/tfjs-core')
  const { initBackend, gpuAdapter } = await import('../models/backend.ts')
  const { MODEL_DEFAULTS } = await import('../models/lm.ts')
  const { train } = await import('../models/train.ts')
  const { loadDataset } = await import('../src/data/index.ts')
  const { createTokenizer } = await import('../src/tokenizer/index.ts')
  const { loadGpt2 } = await import('../src/tokenizer/gpt2.ts')
  const steps = Number(process.env.LMP_BENCH_STEPS ?? 3)
  const batch = Number(process.env.LMP_BENCH_BATCH ?? 1)
  const context = 256
  await loadGpt2()
  const tokenizer = createTokenizer('gpt2')
  const samples = (await loadDataset('tiny-shakespeare', 'train', { dataPath: SHAKESPEARE })).slice(0, 400)
  const modelConfig = {
    ...MODEL_DEFAULTS, model: 'Transformer', vocabSize: tokenizer.vocabSize, nLyr: 12, nHead: 12, dModel: 768, dFf: 3072,
    maxSeqLen: 1024, activation: 'gelu' as const, layout: 'pre-ln' as const, positions: 'learned' as const, initLower: -0.02, initUpper: 0.02,
  }
  const trainConfig = {
    batchSize: batch, lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1, maxSeqLen: context,
    stride: context, totalStep: steps, warmupStep: 1, ckptStep: 1_000_000, logStep: 1_000_000, seed: 1,
  }
  const fields: Record<string, unknown> = { backend, batch, context, vocab: tokenizer.vocabSize }
  try {
    await initBackend(backend as never)
  } catch (e) {
    report('gpt2-small.train', { ...fields, error: `backend does not load: ${firstLine(e)}` })
    return
  }
  let peakTensorBytes = 0
  let peakGpuBytes = 0
  const ms: number[] = []
  const sample = () => {
    // webgpu's backend adds its GPU buffers (numBytesInGPU: in use; numBytesAllocatedInGPU: with its pool).
    const m = tf.memory() as { numBytes: number; numBytesInGPU?: number; numBytesAllocatedInGPU?: number }
    peakTensorBytes = Math.max(peakTensorBytes, m.numBytes)
    peakGpuBytes = Math.max(peakGpuBytes, m.numBytesAllocatedInGPU ?? m.numBytesInGPU ?? 0)
  }
  const dir = mkdtempSync(join(tmpdir(), 'lmp-gpt2-bench-'))
  const t0 = performance.now()
  try {
    const result = await train({
      dir, modelConfig, trainConfig, tokenizer, samples, quiet: true,
      onStep: (x) => {
        ms.push(x.ms)
        sample()
        console.error(`${backend}: step ${x.step} of ${steps}: ${(x.ms / 1000).toFixed(1)} s, loss ${x.loss.toFixed(3)}`)
      },
    })
    const params = Object.values(result.weights).reduce((a, w) => a + w.length, 0)
    const measured = ms.length > 1 ? ms.slice(1) : ms
    report('gpt2-small.train', {
      ...fields, parameters: params, steps_measured: measured.length, step_s: +(median(measured) / 1000).toFixed(2),
      tokens_per_s: +((batch * context) / (median(measured) / 1000)).toFixed(1), first_step_s: +(ms[0] / 1000).toFixed(1),
      peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024), peak_tensor_mib: Math.round(peakTensorBytes / 2 ** 20),
      ...(backend === 'webgpu' ? { peak_gpu_buffer_mib: Math.round(peakGpuBytes / 2 ** 20), adapter: gpuAdapter?.name ?? null, software_adapter: gpuAdapter?.fallback ?? null } : {}),
      wall_s: Math.round((performance.now() - t0) / 1000),
    })
  } catch (e) {
    sample()
    report('gpt2-small.train', {
      ...fields, error: firstLine(e), steps_done: ms.length, peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
      peak_tensor_mib: Math.round(peakTensorBytes / 2 ** 20),
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const only = process.env.LMP_BENCH_GPT2_BACKEND
if (only) {
  await runOne(only)
  process.exit(0)
}
const env: Record<string, string> = { ...(process.env as Record<string, string>) }
env.XDG_RUNTIME_DIR ||= mkdtempSync(join(tmpdir(), 'lmp-xdg-'))
if (!env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) env.VK_ICD_FILENAMES = SWIFTSHADER
const timeoutS = Number(process.env.LMP_BENCH_TIMEOUT_S ?? 1800)
for (const backend of BACKENDS) {
  if (backend === 'cpu' && process.env.LMP_BENCH_CPU !== '1') {
    report('gpt2-small.train', { backend, skipped: 'the pure-JS cpu backend takes many minutes a step at this size (LMP_BENCH_CPU=1 runs it)' })
    continue
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...env, LMP_BENCH_GPT2_BACKEND: backend }, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8', timeout: timeoutS * 1000,
  })
  process.stderr.write(r.stderr ?? '')
  // A process that died (the wasm heap aborting, a timeout) printed no line of its own.
  if (r.status !== 0) {
    const why = r.error ? `timed out after ${timeoutS} s` : r.signal ? `killed by ${r.signal}` : `exit ${r.status}: ${firstLine((r.stderr ?? '').split('\n').filter((l) => !/^\w+: step /.test(l)).join('\n'))}`
    report('gpt2-small.train', { backend, error: why })
  }
}
