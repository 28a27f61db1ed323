// The embedding space of a model: its token embedding matrix (read out of model.onnx), rows scaled to unit
// length, and nearest neighbours by cosine similarity. Browser-safe (the worker runs it); tested in Node.
import { decodeModel } from '../onnx/proto.ts'

/** Names of the token embedding initializer: recurrent models, then the GPT-style Transformer. */
export const EMBEDDING_NAMES = ['emb.weight', 'wte.weight']

export interface Embedding {
  name: string
  rows: number
  dims: number
  /** rows × dims, each row scaled to length 1 (an all-zero row stays zero). */
  unit: Float32Array
}

/** Finds the [vocab, dims] embedding matrix among the graph's initializers. */
export function readEmbedding(modelBytes: Uint8Array, vocabSize: number): Embedding {
  const { graph } = decodeModel(modelBytes)
  const byName = new Map(graph.initializers.map((t) => [t.name, t]))
  const found = EMBEDDING_NAMES.map((n) => byName.get(n)).find((t) => t !== undefined)
  if (!found) throw new Error(`model.onnx has no embedding matrix (an initializer named ${EMBEDDING_NAMES.join(' or ')})`)
  if (found.dtype !== 'float32' || found.dims.length !== 2 || found.dims[0] !== vocabSize) {
    throw new Error(`${found.name} is ${found.dtype}[${found.dims}], not float32[${vocabSize}, dims]`)
  }
  const [rows, dims] = found.dims
  return { name: found.name, rows, dims, unit: unitRows(found.data as Float32Array, rows, dims) }
}

export function unitRows(data: Float32Array, rows: number, dims: number): Float32Array {
  const out = new Float32Array(rows * dims)
  for (let r = 0; r < rows; r++) {
    let sq = 0
    for (let d = 0; d < dims; d++) sq += data[r * dims + d] ** 2
    const scale = sq > 0 ? 1 / Math.sqrt(sq) : 0
    for (let d = 0; d < dims; d++) out[r * dims + d] = data[r * dims + d] * scale
  }
  return out
}

export const rowOf = (e: Embedding, id: number) => e.unit.subarray(id * e.dims, (id + 1) * e.dims)

/** a − b + c over unit rows (the analogy vector; cosine does not care about its length). */
export function analogyVector(e: Embedding, a: number, b: number, c: number): Float32Array {
  const [va, vb, vc] = [rowOf(e, a), rowOf(e, b), rowOf(e, c)]
  return va.map((x, i) => x - vb[i] + vc[i])
}

/** The `count` rows most similar to `query` by cosine similarity, best first (ties: lower id first). */
export function nearest(e: Embedding, query: Float32Array, count: number, exclude: Iterable<number> = []): { id: number; cosine: number }[] {
  let norm = 0
  for (const x of query) norm += x * x
  norm = Math.sqrt(norm) || 1
  const skip = new Set(exclude)
  const best: { id: number; cosine: number }[] = []
  for (let r = 0; r < e.rows; r++) {
    if (skip.has(r)) continue
    let dot = 0
    const off = r * e.dims
    for (let d = 0; d < e.dims; d++) dot += e.unit[off + d] * query[d]
    const cosine = dot / norm
    if (best.length === count && !(cosine > best[count - 1].cosine)) continue
    let at = best.length
    while (at > 0 && cosine > best[at - 1].cosine) at--
    best.splice(at, 0, { id: r, cosine })
    if (best.length > count) best.pop()
  }
  return best
}
