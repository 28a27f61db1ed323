// The manifest (onnx/manifest.json) describes the graph it sits beside; the server, the CLI and the page
// trust it to build feeds and state. So at load it is checked against what the graph really takes and gives
// (as the runtime reports it) and against its own checksum: an edited or damaged manifest is refused in one
// line instead of failing every request. Runtime-agnostic (Node and the browser): no node: modules.
import { LmpError } from '../errors.ts'
import type { Manifest, TensorSpec } from './types.ts'

/** An input or output as onnxruntime reports it (InferenceSession.inputMetadata / outputMetadata). */
export interface GraphValue {
  name: string
  isTensor: boolean
  type?: string
  shape?: ReadonlyArray<number | string>
}

type Dims = ReadonlyArray<number | string>
const show = (d: Dims) => `[${d.join(', ')}]`

/** Whether two shapes agree: the same rank, the same number where a dim is fixed, symbolic where symbolic. */
function sameShape(a: Dims, b: Dims): boolean {
  return a.length === b.length && a.every((d, i) => typeof d === typeof b[i] && (typeof d !== 'number' || d === b[i]))
}

const isSpec = (s: unknown): s is TensorSpec => {
  const x = s as TensorSpec
  return typeof x?.name === 'string' && typeof x.dtype === 'string' && Array.isArray(x.shape)
}

/**
 * Throws a one-line LmpError unless `manifest` describes the graph: the same input and output names, and for
 * each the same element type and shape (rank, fixed dims); `input_ids` int64 and `logits` float32 with the
 * vocabulary as its last dim; every state entry pairs a graph input with a graph output of its shape.
 * `file` names the graph in messages.
 */
export function checkManifestAgainstGraph(manifest: Manifest, graph: { inputs: readonly GraphValue[]; outputs: readonly GraphValue[] }, file = manifest.model): void {
  const fail = (why: string) => new LmpError(`manifest.json does not match ${file}: ${why}`)
  if (!Array.isArray(manifest.inputs) || !manifest.inputs.every(isSpec) || !Array.isArray(manifest.outputs) || !manifest.outputs.every(isSpec)) {
    throw new LmpError(`corrupt manifest.json for ${file}: 'inputs' and 'outputs' must list {name, dtype, shape}`)
  }
  if (!Array.isArray(manifest.state) || !manifest.state.every((s) => typeof s?.input === 'string' && typeof s.output === 'string' && Array.isArray(s.shape))) {
    throw new LmpError(`corrupt manifest.json for ${file}: 'state' must list {input, output, shape}`)
  }
  const sides = [
    ['input', manifest.inputs, graph.inputs],
    ['output', manifest.outputs, graph.outputs],
  ] as const
  const real = { input: new Map(graph.inputs.map((v) => [v.name, v])), output: new Map(graph.outputs.map((v) => [v.name, v])) }
  for (const [side, listed, actual] of sides) {
    const names = new Set(listed.map((s) => s.name))
    for (const v of actual) if (!names.has(v.name)) throw fail(`the graph has ${side} '${v.name}', which the manifest does not list`)
    for (const s of listed) {
      const v = real[side].get(s.name)
      if (!v) throw fail(`the manifest lists ${side} '${s.name}', which the graph does not have`)
      if (!v.isTensor) throw fail(`${side} '${s.name}' is not a tensor in the graph`)
      if (v.type !== s.dtype) throw fail(`${side} '${s.name}' is ${s.dtype} in the manifest, ${v.type} in the graph`)
      if (!sameShape(s.shape, v.shape ?? [])) throw fail(`${side} '${s.name}' has shape ${show(s.shape)} in the manifest, ${show(v.shape ?? [])} in the graph`)
    }
  }
  const ids = real.input.get('input_ids')
  if (ids?.type !== 'int64' || ids.shape?.length !== 2) throw fail(`the graph needs an int64 input 'input_ids' [batch, sequence]`)
  const logits = real.output.get('logits')
  if (logits?.type !== 'float32' || logits.shape?.length !== 3) throw fail(`the graph needs a float32 output 'logits' [batch, sequence, vocab]`)
  const vocab = logits.shape[2]
  if (typeof vocab === 'number' && vocab !== manifest.vocabSize) throw fail(`vocabSize is ${manifest.vocabSize} in the manifest, ${vocab} in the graph's logits`)
  for (const s of manifest.state) {
    const input = real.input.get(s.input)
    const output = real.output.get(s.output)
    if (!input) throw fail(`state input '${s.input}' is not an input of the graph`)
    if (!output) throw fail(`state output '${s.output}' is not an output of the graph`)
    if (input.type !== 'float32' || output.type !== 'float32') throw fail(`state '${s.input}' → '${s.output}' must be float32 in the graph`)
    if (!sameShape(s.shape, input.shape ?? [])) throw fail(`state input '${s.input}' has shape ${show(s.shape)} in the manifest, ${show(input.shape ?? [])} in the graph`)
    if ((output.shape ?? []).length !== s.shape.length) throw fail(`state output '${s.output}' has rank ${(output.shape ?? []).length} in the graph, its input ${s.shape.length}`)
  }
}

/** JSON with object keys sorted at every level: the same text for the same value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value)
}

/** What `manifestSha256` covers: the manifest without that field, as canonical JSON (so it covers `sha256`, the graph's checksum, too). */
export function manifestDigestInput(manifest: Manifest): string {
  const { manifestSha256: _, ...rest } = manifest
  return canonicalJson(rest)
}

/**
 * Throws a one-line LmpError when the manifest's `manifestSha256` does not match its content (edited by hand,
 * or damaged). Manifests written before the field existed have none and pass. Web Crypto: Node 20 and
 * browsers (secure contexts) have it.
 */
export async function checkManifestDigest(manifest: Manifest, file = 'manifest.json'): Promise<void> {
  if (manifest.manifestSha256 === undefined) return
  const bytes = new TextEncoder().encode(manifestDigestInput(manifest))
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes))
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
  if (hex !== manifest.manifestSha256) {
    throw new LmpError(`${file} does not match its manifestSha256: it was edited or is damaged (export the model again: lmp export-onnx)`)
  }
}
