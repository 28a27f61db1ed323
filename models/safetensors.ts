// The safetensors format (github.com/huggingface/safetensors), so PyTorch and others can read our
// checkpoints: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}},
// then the tensor bytes (little-endian, row-major), offsets relative to the end of the header.
// Reading is strict: every number in the header is checked against the file before it is used.
import { readFile } from 'node:fs/promises'
import { LmpError } from '../src/errors.ts'
import { writeFileAtomic } from '../src/io/atomic.ts'

export interface NamedTensor {
  dtype: 'F32' | 'I64' | 'I32'
  shape: number[]
  data: Float32Array | BigInt64Array | Int32Array
}

const ARRAY_OF = { F32: Float32Array, I64: BigInt64Array, I32: Int32Array } as const
// Every dtype the format defines; the ones not in ARRAY_OF are valid but not supported here.
const KNOWN_DTYPES = new Set(['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'])
const METADATA = '__metadata__'

// Typed-array bytes are written as they are: right only on little-endian hosts (all we run on).
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('models/safetensors.ts needs a little-endian host')

/** Serializes tensors (and string metadata) to safetensors bytes. */
export function encodeSafetensors(tensors: Record<string, NamedTensor>, metadata?: Record<string, string>): Uint8Array {
  // Widest elements first, then by name: every tensor starts at a multiple of its element size
  // (the header is padded to 8 bytes), so readers can view the data in place. This is also the
  // reference implementation's order.
  const names = Object.keys(tensors).sort(
    (a, b) => ARRAY_OF[tensors[b].dtype].BYTES_PER_ELEMENT - ARRAY_OF[tensors[a].dtype].BYTES_PER_ELEMENT || (a < b ? -1 : a > b ? 1 : 0),
  )
  const header: Record<string, unknown> = {}
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata ${k}: value must be a string`)
    }
    header[METADATA] = metadata
  }
  let offset = 0
  for (const name of names) {
    const t = tensors[name]
    if (name === METADATA || name === '') throw new Error(`safetensors: invalid tensor name "${name}"`)
    const arrayType = ARRAY_OF[t.dtype]
    if (!arrayType) throw new Error(`tensor ${name}: unsupported dtype ${t.dtype}`)
    if (!(t.data instanceof arrayType)) throw new Error(`tensor ${name}: ${t.dtype} needs a ${arrayType.name}, got ${t.data.constructor.name}`)
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`tensor ${name}: bad shape [${t.shape}]`)
    const count = t.shape.reduce((a, b) => a * b, 1)
    if (t.data.length !== count) throw new Error(`tensor ${name}: shape [${t.shape}] holds ${count} values, data has ${t.data.length}`)
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    offset += t.data.byteLength
  }
  const json = JSON.stringify(header)
  const jsonBytes = new TextEncoder().encode(json)
  const headerLength = Math.ceil(jsonBytes.length / 8) * 8 // pad with spaces, as the format allows
  const out = new Uint8Array(8 + headerLength + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true)
  out.set(jsonBytes, 8)
  out.fill(0x20, 8 + jsonBytes.length, 8 + headerLength)
  let at = 8 + headerLength
  for (const name of names) {
    const { data } = tensors[name]
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at)
    at += data.byteLength
  }
  return out
}

/** Parses safetensors bytes; `fileName` names the file in error messages. Tensors are copied out (aligned). */
export function decodeSafetensors(
  bytes: Uint8Array,
  fileName = '<buffer>',
): { tensors: Record<string, NamedTensor>; metadata: Record<string, string> } {
  const corrupt = (why: string) => new LmpError(`corrupt safetensors file ${fileName}: ${why}`)
  if (bytes.length < 8) throw corrupt(`truncated file (${bytes.length} bytes, no header length)`)
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true)
  if (headerLength > BigInt(bytes.length - 8)) {
    throw corrupt(`header length ${headerLength} exceeds file size ${bytes.length}`)
  }
  const dataStart = 8 + Number(headerLength)
  const dataLength = bytes.length - dataStart

  let header: unknown
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart))
    if (!text.startsWith('{')) throw new Error('does not start with "{"')
    header = JSON.parse(text)
  } catch (e) {
    throw corrupt(`bad JSON header (${(e as Error).message.replace(/\s+/g, ' ')})`)
  }
  if (!isObject(header)) throw corrupt('bad JSON header (not an object)')

  const metadata: Record<string, string> = {}
  if (METADATA in header) {
    const m = header[METADATA]
    if (!isObject(m) || !Object.values(m).every((v) => typeof v === 'string')) {
      throw corrupt('__metadata__ must map strings to strings')
    }
    Object.assign(metadata, m)
  }

  type Entry = { name: string; dtype: NamedTensor['dtype']; shape: number[]; begin: number; end: number }
  const entries: Entry[] = []
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA) continue
    if (!isObject(info)) throw corrupt(`tensor ${name}: entry is not an object`)
    const { dtype, shape, data_offsets: offsets } = info
    if (typeof dtype !== 'string' || !KNOWN_DTYPES.has(dtype)) throw corrupt(`tensor ${name}: unknown dtype ${JSON.stringify(dtype)}`)
    if (!(dtype in ARRAY_OF)) {
      throw new LmpError(`safetensors file ${fileName}: tensor ${name} has dtype ${dtype}; only F32, I64 and I32 are supported`)
    }
    if (!Array.isArray(shape) || !shape.every(isSize)) throw corrupt(`tensor ${name}: bad shape ${JSON.stringify(shape)}`)
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize) || offsets[0] > offsets[1]) {
      throw corrupt(`tensor ${name}: bad data_offsets ${JSON.stringify(offsets)}`)
    }
    const [begin, end] = offsets as [number, number]
    const size = ARRAY_OF[dtype as NamedTensor['dtype']].BYTES_PER_ELEMENT
    const needed = (shape as number[]).reduce((a, b) => a * b, size)
    if (end - begin !== needed) {
      throw corrupt(`tensor ${name}: ${dtype}[${shape}] needs ${needed} bytes, data_offsets [${begin},${end}] hold ${end - begin}`)
    }
    if (end > dataLength) throw corrupt(`truncated file (tensor ${name} ends at data byte ${end}, the file holds ${dataLength})`)
    entries.push({ name, dtype: dtype as NamedTensor['dtype'], shape: shape as number[], begin, end })
  }

  // The tensors must tile the data exactly: no overlaps, no gaps, nothing left over.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end)
  let covered = 0
  let previous = ''
  for (const e of byOffset) {
    if (e.begin < covered) throw corrupt(`tensors ${previous} and ${e.name} overlap`)
    if (e.begin > covered) throw corrupt(`${e.begin - covered} unused bytes before tensor ${e.name}`)
    covered = e.end
    previous = e.name
  }
  if (covered < dataLength) throw corrupt(`${dataLength - covered} unused bytes after the last tensor`)

  const tensors: Record<string, NamedTensor> = {}
  for (const e of entries) {
    // Copy out: the offset in the file need not be aligned for the typed array (and a Node Buffer's
    // slice would share memory with the whole file).
    const copy = new Uint8Array(e.end - e.begin)
    copy.set(bytes.subarray(dataStart + e.begin, dataStart + e.end))
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: new ARRAY_OF[e.dtype](copy.buffer) }
  }
  return { tensors, metadata }
}

/** Writes a safetensors file atomically (temp file, fsync, rename). */
export async function writeSafetensors(path: string, tensors: Record<string, NamedTensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata))
}

/**
 * Reads and validates a safetensors file: a checkpoint, so every F32 value must be finite (a NaN or an
 * infinity, e.g. from a flipped exponent bit, is refused naming the tensor; see nonFinite). Training, export,
 * eval and generation all load checkpoints through here.
 */
export async function readSafetensors(path: string): Promise<{ tensors: Record<string, NamedTensor>; metadata: Record<string, string> }> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LmpError(`no such checkpoint: ${path}`, 404)
    throw new LmpError(`cannot read checkpoint ${path}: ${(e as Error).message}`)
  }
  const file = decodeSafetensors(bytes, path)
  for (const [name, t] of Object.entries(file.tensors)) {
    const bad = nonFinite(t)
    if (bad >= 0) {
      const at = t.shape.length > 1 ? `[${unravel(bad, t.shape).join(', ')}]` : `${bad}`
      throw new LmpError(`corrupt checkpoint ${path}: tensor '${name}' holds ${(t.data as Float32Array)[bad]} at index ${at} (weights must be finite)`)
    }
  }
  return file
}

/** The flat index of the first NaN or ±Infinity in an F32 tensor, or -1 (always -1 for integer tensors). */
export function nonFinite(t: NamedTensor): number {
  if (!(t.data instanceof Float32Array)) return -1
  const data = t.data
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for every finite x, NaN for NaN and ±Infinity.
    if (data[i] - data[i] !== 0) return i
  }
  return -1
}

/** Row-major multi-index of flat index `i` in `shape`. */
function unravel(i: number, shape: number[]): number[] {
  const out = new Array<number>(shape.length)
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = i % shape[d]
    i = Math.floor(i / shape[d])
  }
  return out
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isSize = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0
