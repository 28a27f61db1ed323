// Pick the fastest TF.js backend that loads here: native TensorFlow (tfjs-node-gpu, then tfjs-node), else
// WebGPU on a real GPU (models/webgpu.ts; never a fallback/software adapter unless asked for by name), else
// WebAssembly, else the pure-JS cpu backend. The choice is verified with tf.getBackend(): a backend whose
// start-up fails leaves TF.js silently on another one (../shared/MEASURED.md).
import * as tf from '@tensorflow/tfjs-core'
// Gradients are registered separately from the ops in tfjs-core (the @tensorflow/tfjs bundle does this).
import '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-cpu'
import '@tensorflow/tfjs-backend-wasm'
import { LmpError } from '../src/errors.ts'
import { probeAdapter, startWebGpuBackend, webgpuInstalled, type GpuAdapter } from './webgpu.ts'

export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const
export type BackendChoice = (typeof BACKENDS)[number]
let chosen: string | null = null
/** The WebGPU adapter TF.js runs on, when the backend is webgpu. */
export let gpuAdapter: GpuAdapter | undefined

/** The backend in words, with the adapter on webgpu: "webgpu (NVIDIA ampere ...)". */
export function describeBackend(name: string): string {
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

export async function initBackend(choice: BackendChoice = 'auto'): Promise<string> {
  if (chosen && (choice === 'auto' || choice === chosen)) return chosen
  const order: string[] = choice === 'auto' ? ['tensorflow', 'webgpu', 'wasm', 'cpu'] : [choice]
  for (const name of order) {
    const ok = name === 'tensorflow' ? await tryNative() : name === 'webgpu' ? await tryWebGpu(choice)
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
