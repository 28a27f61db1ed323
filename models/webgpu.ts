// TF.js on WebGPU in Node: the optional `webgpu` package (Dawn, the WebGPU implementation in Chrome, with
// its native binaries inside the package) gives Node a navigator.gpu, on which the optional
// @tensorflow/tfjs-backend-webgpu trains. Any GPU with a Vulkan, Metal or D3D12 driver works; nothing is
// downloaded. Two kernels need care (issue 11): reads must be async (dataSync needs an OffscreenCanvas,
// which Node lacks), and AddN with more inputs than the shader stage's storage-buffer limit returns
// garbage with only a warning, so it is summed here in chunks under the limit.
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import * as tf from '@tensorflow/tfjs-core'
import { LmpError } from '../src/errors.ts'
import { WEBGPU_NEEDS } from '../src/infer/device.ts'

export interface GpuAdapter {
  /** vendor, architecture and description, as the adapter gives them */
  name: string
  /** a fallback adapter: a software rasterizer on the CPU (SwiftShader, say), not a GPU */
  fallback: boolean
  /** maxStorageBuffersPerShaderStage */
  maxStorageBuffers: number
}

const require = createRequire(import.meta.url)
const DAWN: string = 'webgpu'
const TFJS_WEBGPU: string = '@tensorflow/tfjs-backend-webgpu'

/** Whether the optional `webgpu` package is installed (it may still fail to load). */
export function webgpuInstalled(): boolean {
  try {
    require.resolve('webgpu')
    return true
  } catch {
    return false
  }
}

const PROBE = `
const out = (x) => { process.stdout.write(JSON.stringify(x)); process.exit(0) }
try {
  const { create } = await import(process.argv[1])
  const a = await create([]).requestAdapter()
  if (!a) out({ error: 'no WebGPU adapter' })
  const i = a.info
  out({ name: [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unknown adapter', fallback: Boolean(i.isFallbackAdapter ?? a.isFallbackAdapter), maxStorageBuffers: a.limits.maxStorageBuffersPerShaderStage })
} catch (err) {
  out({ error: String(err?.message ?? err).split('\\n')[0] })
}
`

/**
 * The default WebGPU adapter the `webgpu` package finds, asked in a child process: with no adapter Dawn
 * writes Vulkan warnings and a source trace to stderr, which a one-line error must not come with.
 * Throws an LmpError saying what is missing.
 */
export async function probeAdapter(): Promise<GpuAdapter> {
  if (!webgpuInstalled()) throw new LmpError("the optional package 'webgpu' is not installed (npm install webgpu@0.6.2)")
  const url = new URL(`file://${require.resolve('webgpu')}`).href
  const out = await new Promise<string>((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', PROBE, url], { timeout: 60_000 }, (err, stdout) => resolve(stdout || JSON.stringify({ error: String(err?.message ?? 'no output').split('\n')[0] })))
  })
  let result: GpuAdapter & { error?: string }
  try {
    result = JSON.parse(out)
  } catch {
    result = { error: out.split('\n')[0] } as GpuAdapter & { error: string }
  }
  if (result.error) throw new LmpError(`${result.error}: WebGPU needs ${WEBGPU_NEEDS}`)
  return result
}

let started: GpuAdapter | undefined

/**
 * Makes TF.js's 'webgpu' backend current on the default adapter (probed first, see probeAdapter);
 * returns the adapter. Throws an LmpError when the packages or the adapter are missing.
 */
export async function startWebGpuBackend(): Promise<GpuAdapter> {
  if (started && tf.getBackend() === 'webgpu') return started
  const adapter = await probeAdapter()
  try {
    // Names in variables: type checks must pass where the optional packages are not installed.
    const dawn = (await import(DAWN)) as { create(flags: string[]): unknown; globals: object }
    const g = globalThis as { navigator?: { gpu?: unknown } }
    if (!g.navigator?.gpu) {
      Object.assign(globalThis, dawn.globals) // GPUBufferUsage and the other constants TF.js reads
      const gpu = dawn.create([])
      if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true })
      else g.navigator = { gpu }
    }
    // After navigator.gpu exists: the backend registers itself only where WebGPU is there.
    await import(TFJS_WEBGPU)
  } catch (err) {
    throw new LmpError(`the optional WebGPU packages cannot load (${String((err as Error).message).split('\n')[0]}): npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0`)
  }
  if (!(await tf.setBackend('webgpu')) || tf.getBackend() !== 'webgpu') throw new LmpError(`TF.js's webgpu backend did not start on ${adapter.name}`)
  await tf.ready()
  // The device TF.js asked for has the default limits here (8), whatever the adapter could give.
  const device = (tf.backend() as unknown as { device?: { limits?: { maxStorageBuffersPerShaderStage?: number } } }).device
  chunkAddN(device?.limits?.maxStorageBuffersPerShaderStage ?? 8)
  started = adapter
  return adapter
}

/**
 * Re-registers the webgpu AddN kernel so that it never takes more inputs than a shader stage may bind
 * storage buffers (the output needs one): more inputs are summed in chunks, then the partial sums. The
 * global-norm gradient clipping sums one input per parameter, far more than the 8 most GPUs allow.
 */
export function chunkAddN(maxStorageBuffers: number) {
  const original = tf.getKernel('AddN', 'webgpu')
  if (!original || (original as { lmpChunked?: boolean }).lmpChunked) return
  const most = Math.max(2, maxStorageBuffers - 1)
  const kernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) => {
    let xs = Object.values(inputs) as tf.TensorInfo[]
    const temps: tf.TensorInfo[] = []
    while (xs.length > most) {
      const next: tf.TensorInfo[] = []
      for (let i = 0; i < xs.length; i += most) {
        const part = xs.slice(i, i + most)
        if (part.length === 1) next.push(part[0])
        else {
          const sum = original.kernelFunc({ inputs: part as unknown as tf.NamedTensorInfoMap, backend, attrs }) as tf.TensorInfo
          temps.push(sum)
          next.push(sum)
        }
      }
      xs = next
    }
    const out = original.kernelFunc({ inputs: xs as unknown as tf.NamedTensorInfoMap, backend, attrs }) as tf.TensorInfo
    for (const t of temps) (backend as { disposeData(id: object): void }).disposeData(t.dataId)
    return out
  }
  tf.unregisterKernel('AddN', 'webgpu')
  tf.registerKernel({ kernelName: 'AddN', backendName: 'webgpu', kernelFunc, ...{ lmpChunked: true } } as tf.KernelConfig)
}
