// A StepModel over an ONNX Runtime session. onnxruntime-node and onnxruntime-web share this API, so the
// server, the CLI and the page run the same code; the caller passes in whichever `ort` it has.
import { maskAndPositions, pastAxes } from './batch.ts'
import { ATTENTION_MASK, POSITION_IDS, type Manifest, type State, type StepModel } from './types.ts'
import { checkManifestAgainstGraph, checkManifestDigest, type GraphValue } from './manifest-check.ts'

// The few parts of onnxruntime-common we use (so this file needs neither runtime as a dependency).
interface OrtTensor { data: unknown; dims: readonly number[] }
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>
  release(): Promise<void>
  readonly inputMetadata: readonly GraphValue[]
  readonly outputMetadata: readonly GraphValue[]
}
export interface OrtLike {
  InferenceSession: { create(model: Uint8Array, options?: object): Promise<OrtSession> }
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: number[]) => OrtTensor
}

export interface OrtModelOptions {
  executionProviders?: string[]
  numThreads?: number
}

/**
 * Below this size a model's per-token work is too small to share between threads: one intra-op thread is
 * faster, in the browser (bench/web.bench.ts: the demo LSTM ~2,200 tokens/s on 1 WASM thread, 1,400 on 2) and
 * in the server under load (bench/server.bench.ts: 16 clients ~25% more tokens/s than onnxruntime's default
 * of one spinning thread per core, which competes with the event loop for the cores).
 */
export const SMALL_MODEL_BYTES = 16 << 20

/** The state a generation starts from: zeros, with 'batch' → batch and 'past' (a KV cache) → length 0. */
export function zeroState(manifest: Manifest, batch: number): State {
  return manifest.state.map((s) => {
    const dims = s.shape.map((d) => (d === 'batch' ? batch : typeof d === 'number' ? d : 0))
    return { dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) }
  })
}

export async function loadOrtModel(ort: OrtLike, modelBytes: Uint8Array, manifest: Manifest, opts: OrtModelOptions = {}): Promise<StepModel> {
  const session = await ort.InferenceSession.create(modelBytes, {
    executionProviders: opts.executionProviders ?? ['cpu'],
    graphOptimizationLevel: 'all',
    ...(opts.numThreads ? { intraOpNumThreads: opts.numThreads } : {}),
    // On WebGPU every session warns that shape ops run on the CPU, which is by design: errors only.
    ...(opts.executionProviders?.includes('webgpu') ? { logSeverityLevel: 3 } : {}),
  })
  try {
    checkManifestAgainstGraph(manifest, { inputs: session.inputMetadata, outputs: session.outputMetadata })
    await checkManifestDigest(manifest)
  } catch (e) {
    await session.release()
    throw e
  }
  const masked = manifest.inputs.some((i) => i.name === ATTENTION_MASK)
  const cache = pastAxes(manifest).findIndex((a) => a > 0) // a state entry with a 'past' axis
  const pastAxis = pastAxes(manifest)[cache]
  if (masked && cache < 0) throw new Error(`the manifest lists ${ATTENTION_MASK} but no key/value cache with a 'past' axis`)
  return {
    manifest,
    initState: (batch: number) => zeroState(manifest, batch),
    async forward(ids: number[][], state: State, pastPadding?: number[]) {
      const batch = ids.length
      const steps = ids[0]?.length ?? 0
      if (batch === 0 || steps === 0) throw new Error('forward needs at least one row with at least one token')
      const flat = new BigInt64Array(batch * steps)
      ids.forEach((row, b) => {
        if (row.length !== steps) throw new Error('all rows of a batch must have the same length')
        row.forEach((id, t) => (flat[b * steps + t] = BigInt(id)))
      })
      const feeds: Record<string, OrtTensor> = { input_ids: new ort.Tensor('int64', flat, [batch, steps]) }
      manifest.state.forEach((s, i) => (feeds[s.input] = new ort.Tensor('float32', state[i].data, state[i].dims)))
      if (masked) {
        const past = state[cache].dims[pastAxis]
        const { mask, positions } = maskAndPositions(past, steps, pastPadding ?? Array(batch).fill(0), BigInt64Array, BigInt)
        feeds[ATTENTION_MASK] = new ort.Tensor('int64', mask, [batch, past + steps])
        feeds[POSITION_IDS] = new ort.Tensor('int64', positions, [batch, steps])
      }
      const out = await session.run(feeds)
      return {
        logits: out.logits.data as Float32Array,
        state: manifest.state.map((s) => ({ data: out[s.output].data as Float32Array, dims: [...out[s.output].dims] })),
      }
    },
    release: () => session.release(),
  }
}
