// Pick the fastest TF.js backend that loads here: native TensorFlow (tfjs-node-gpu, then tfjs-node), else
// WebGPU on a real GPU (models/webgpu.ts; never a fallback/software adapter unless asked for by name), else
// WebAssembly, else the pure-JS cpu backend. The choice is verified with tf.getBackend(): a backend whose
// start-up fails leaves TF.js silently on another one (../shared/MEASURED.md).
import * as tf from '@tensorflow/tfjs-core'
// Gradients are registered separately from the ops in tfjs-core (the @tensorflow/tfjs bundle does this).
import '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-cpu'
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm'
import { createRequire } from 'node:module'
import os from 'node:os'
import { LmpError } from '../src/errors.ts'
import { probeAdapter, startWebGpuBackend, webgpuInstalled, type GpuAdapter } from './webgpu.ts'

export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const
export type BackendChoice = (typeof BACKENDS)[number]
let chosen: string | null = null
/** The WebGPU adapter TF.js runs on, when the backend is webgpu. */
export let gpuAdapter: GpuAdapter | undefined

/** The backend in words, with the adapter on webgpu: "webgpu (NVIDIA ampere ...)", threads on wasm: "wasm (2 threads)". */
export function describeBackend(name: string): string {
  if (name === 'wasm' && chosen === 'wasm') return `wasm (${wasmThreads()} thread${wasmThreads() > 1 ? 's' : ''})`
  return name === 'webgpu' && gpuAdapter ? `webgpu (${gpuAdapter.name}${gpuAdapter.fallback ? ', a software adapter' : ''})` : name
}

/** WebGPU for `auto` only on a real GPU: a fallback adapter runs on the CPU, slower than wasm. */
async function tryWebGpu(choice: BackendChoice): Promise<boolean> {
  if (choice === 'auto') {
    if (!webgpuInstalled()) return false
    const adapter = await probeAdapter().catch(() => undefined)
    if (!adapter || adapter.fallback) return false
  }
  try {
    gpuAdapter = await startWebGpuBackend()
    return true
  } catch (err) {
    if (choice === 'webgpu') throw new LmpError(`--backend webgpu: ${(err as Error).message}`)
    return false
  }
}

async function tryNative(): Promise<boolean> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg) // registers the 'tensorflow' backend when its native library loads
      if ((await tf.setBackend('tensorflow')) && tf.getBackend() === 'tensorflow') return true
    } catch {
      // not installed, or libtensorflow missing: try the next one
    }
  }
  return false
}

/** The most threads TF.js's threaded wasm build can run: it starts a pool of 8 workers. */
export const MAX_WASM_THREADS = 8

/** wasm's default number of threads: one per CPU core, at most MAX_WASM_THREADS. */
export function defaultWasmThreads(): number {
  return Math.min(os.availableParallelism(), MAX_WASM_THREADS)
}

/**
 * Starts TF.js's wasm backend with XNNPACK's thread pool on `numThreads` threads (1: the single-threaded
 * SIMD build, no workers). TF.js turns threads off in Node (tfjs issue 3830) and, in its threaded build,
 * caps them at half of the logical cores; both are lifted here for the start-up only:
 * - the flag WASM_HAS_MULTITHREAD_SUPPORT is set;
 * - the pthread workers, which TF.js would start from a Blob URL (unsupported by Node's Worker), start
 *   from models/wasm-pthread-worker.cjs;
 * - the core count the runtime reads (`os.cpus().length`, halved) is made to allow `numThreads`.
 * XNNPACK splits a product's output between threads, so results are bit-identical for any count.
 * Returns whether the backend started.
 */
async function startWasm(numThreads: number): Promise<boolean> {
  const threaded = numThreads > 1
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threaded)
  setThreadsCount(numThreads)
  if (!threaded) return (await tf.setBackend('wasm').catch(() => false)) && tf.getBackend() === 'wasm'
  const worker = createRequire(import.meta.url).resolve('./wasm-pthread-worker.cjs')
  const { createObjectURL } = URL
  const { cpus } = os
  URL.createObjectURL = (blob: Blob) => (blob.type === 'application/javascript' ? worker : createObjectURL(blob))
  os.cpus = () => Array(2 * numThreads).fill(cpus()[0])
  try {
    if (!(await tf.setBackend('wasm').catch(() => false)) || tf.getBackend() !== 'wasm') return false
    // The runtime starts 8 workers; XNNPACK keeps numThreads − 1 of them. The others would hold ~18 MB each.
    type NodeWorker = { terminate(): void; unref(): void }
    const pthreads = (tf.backend() as unknown as { wasm: { PThread: { unusedWorkers: NodeWorker[]; runningWorkers: NodeWorker[] } } }).wasm.PThread
    for (const w of pthreads.unusedWorkers.splice(0)) w.terminate()
    // A thread's start adds a message listener, which holds the process open at its end: let it exit.
    for (const w of pthreads.runningWorkers) w.unref()
    return true
  } finally {
    URL.createObjectURL = createObjectURL
    os.cpus = cpus
  }
}

/** Should the threaded build not start here, the single-threaded one still trains (and says so). */
async function startWasmOrOneThread(numThreads: number): Promise<boolean> {
  if (await startWasm(numThreads)) return true
  if (numThreads === 1 || !(await startWasm(1))) return false
  process.stderr.write(`lmp: warning: the wasm backend did not start on ${numThreads} threads; training on one\n`)
  return true
}

/** The number of threads the wasm backend runs its kernels on (1 when it is not started, or not wasm). */
export function wasmThreads(): number {
  return chosen === 'wasm' ? getThreadsCount() : 1
}

/**
 * Starts the TF.js backend `choice` (`auto`: the fastest that loads here) and returns its name.
 * `numThreads` is for wasm (default: defaultWasmThreads()); other backends choose their own.
 * Throws LmpError when the backend asked for cannot start.
 */
export async function initBackend(choice: BackendChoice = 'auto', { numThreads = defaultWasmThreads() }: { numThreads?: number } = {}): Promise<string> {
  if (chosen && (choice === 'auto' || choice === chosen)) return chosen
  const order: string[] = choice === 'auto' ? ['tensorflow', 'webgpu', 'wasm', 'cpu'] : [choice]
  for (const name of order) {
    const ok = name === 'tensorflow' ? await tryNative() : name === 'webgpu' ? await tryWebGpu(choice)
      : name === 'wasm' ? await startWasmOrOneThread(numThreads)
      : (await tf.setBackend(name).catch(() => false)) && tf.getBackend() === name
    if (ok) {
      await tf.ready()
      if (name === 'wasm') patchWasmMatMul()
      chosen = name
      return name
    }
  }
  throw new LmpError(`TF.js backend '${choice}' could not be started`)
}

/**
 * The wasm BatchMatMul kernel is 11–32× slower when an operand is transposed, and matMul's gradient always
 * asks for transposed operands. Re-register the kernel so that it transposes explicitly first (a separate,
 * fast Transpose kernel) and then multiplies plainly: the same numbers, several times faster training.
 */
function patchWasmMatMul() {
  const original = tf.getKernel('BatchMatMul', 'wasm')
  const transposeKernel = tf.getKernel('Transpose', 'wasm')
  if (!original || !transposeKernel || (original as any).lmpPatched) return
  const swapLast = (rank: number) => [...Array(rank - 2).keys(), rank - 1, rank - 2]
  const kernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) => {
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean }
    if (!transposeA && !transposeB) return original.kernelFunc({ inputs, backend, attrs })
    const temps: tf.TensorInfo[] = []
    const plain = (x: tf.TensorInfo, transposed: boolean) => {
      if (!transposed) return x
      const t = transposeKernel.kernelFunc({ inputs: { x }, backend, attrs: { perm: swapLast(x.shape.length) } }) as tf.TensorInfo
      temps.push(t)
      return t
    }
    const a = plain(inputs.a as tf.TensorInfo, transposeA)
    const b = plain(inputs.b as tf.TensorInfo, transposeB)
    const out = original.kernelFunc({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } })
    for (const t of temps) (backend as any).disposeData(t.dataId)
    return out
  }
  tf.unregisterKernel('BatchMatMul', 'wasm')
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc, ...{ lmpPatched: true } } as any)
}
