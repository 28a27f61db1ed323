// `--device cpu|webgpu|cuda`: which onnxruntime-node execution provider runs a model. A device that cannot
// start is an error naming what is missing, never a silent fall-back to the CPU.
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { encodeModel } from '../../onnx/proto.ts'
import { LmpError } from '../errors.ts'

export const DEVICES = ['cpu', 'webgpu', 'cuda'] as const
export type Device = (typeof DEVICES)[number]

/** onnxruntime-node's execution provider names for a device (the same words). */
export function executionProvidersFor(device: Device = 'cpu'): string[] {
  return [device]
}

/** The device a list of execution providers asks for ('cpu' when none). */
export function deviceOf(executionProviders?: string[]): Device {
  const first = executionProviders?.[0]
  return (DEVICES as readonly string[]).includes(first ?? '') ? (first as Device) : 'cpu'
}

/** What `--device webgpu` needs, said when it finds no adapter. */
export const WEBGPU_NEEDS =
  'a GPU driver with Vulkan (Metal on macOS, D3D12 on Windows), or a software one such as ' +
  "Chromium's SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json"

// A one-node graph (y = x + x) to start the WebGPU EP on.
const probeModel = () => encodeModel({
  graph: {
    name: 'probe',
    nodes: [{ op: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
    initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: [1] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
  },
})

const PROBE = `
const ort = await import(process.argv[1])
try {
  const s = await ort.InferenceSession.create(Buffer.from(process.argv[2], 'base64'), { executionProviders: ['webgpu'], logSeverityLevel: 3 })
  const y = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1.5), [1]) })
  process.stdout.write(y.y.data[0] === 3 ? 'ok' : 'wrong result ' + y.y.data[0])
} catch (err) {
  process.stdout.write(String(err?.message ?? err))
}
process.exit(0)
`

/**
 * Resolves when onnxruntime-node's WebGPU execution provider finds an adapter and runs a one-node graph on
 * it; else throws an LmpError of one line saying what is missing. It runs in a child process because
 * Dawn writes its Vulkan warnings and a source trace straight to stderr when no adapter is found.
 */
export function checkWebGpu(): Promise<void> {
  checked ??= probeWebGpu()
  return checked
}
let checked: Promise<void> | undefined

async function probeWebGpu(): Promise<void> {
  const ortUrl = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href
  const b64 = Buffer.from(probeModel()).toString('base64')
  const out = await new Promise<string>((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', PROBE, ortUrl, b64], { timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      resolve(stdout || String(err?.message ?? 'no output'))
    })
  })
  if (out === 'ok') return
  // onnxruntime's message ends '... Failed to get a WebGPU adapter: No supported adapters ...'.
  const reason = /Failed to get a WebGPU adapter[^\n]*/.exec(out)?.[0] ?? out.split('\n')[0]
  throw new LmpError(`--device webgpu: onnxruntime-node's WebGPU execution provider cannot start (${reason.trim()}); it needs ${WEBGPU_NEEDS}; or use --device cpu`)
}

/** Checks that the device can start before any model loads (only WebGPU needs a check of its own). */
export async function checkDevice(device: Device): Promise<void> {
  if (device === 'webgpu') await checkWebGpu()
}
