// Serializes ONNX models with protobufjs. The schema below is the subset of onnx.proto
// (github.com/onnx/onnx, onnx/onnx.proto) that our exporter needs, with its exact field numbers;
// fields we never write are left out and skipped as unknown fields when decoding.
// Browser-safe: no node: imports, the schema is built in code (no .proto file to load).
import protobuf from 'protobufjs/light.js'
import { LmpError } from '../src/errors.ts'

export type DType = 'float32' | 'int64' | 'int32' | 'bool'
export interface TensorDef {
  name: string
  dtype: DType
  dims: number[]
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array
}
/** One attribute value. `graphs` (AttributeProto.GRAPHS) is rarely needed; `g` holds a subgraph such as a Scan body. */
export type AttrValue =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] }
  | { t: TensorDef }
  | { g: GraphDef }
  | { graphs: GraphDef[] }
export interface NodeDef {
  op: string
  inputs: string[]
  outputs: string[]
  name?: string
  domain?: string
  attrs?: Record<string, AttrValue>
}
/** A graph input or output; a string dim is symbolic (dim_param), '' an unknown dim. */
export interface ValueInfo {
  name: string
  dtype: DType
  shape: (number | string)[]
}
export interface GraphDef {
  name: string
  nodes: NodeDef[]
  initializers: TensorDef[]
  inputs: ValueInfo[]
  outputs: ValueInfo[]
}
export interface ModelDef {
  graph: GraphDef
  opset?: number // default 17
  irVersion?: number // default 8
  producerName?: string
  producerVersion?: string
  docString?: string
  metadata?: Record<string, string>
}

// --- schema -------------------------------------------------------------------------------------

type FieldSpec = [id: number, type: string, rule?: 'repeated']
function message(fields: Record<string, FieldSpec>, extra: Record<string, unknown> = {}) {
  const out: Record<string, { id: number; type: string; rule?: string; options?: object }> = {}
  for (const [name, [id, type, rule]] of Object.entries(fields)) {
    out[name] = { id, type, ...(rule ? { rule } : {}) }
  }
  // onnx.proto is proto2: repeated scalars are unpacked unless marked [packed = true].
  return { edition: 'proto2', fields: out, ...extra }
}
const packed = { packed: true }

const schema = {
  nested: {
    onnx: {
      nested: {
        ModelProto: message({
          ir_version: [1, 'int64'],
          producer_name: [2, 'string'],
          producer_version: [3, 'string'],
          domain: [4, 'string'],
          model_version: [5, 'int64'],
          doc_string: [6, 'string'],
          graph: [7, 'GraphProto'],
          opset_import: [8, 'OperatorSetIdProto', 'repeated'],
          metadata_props: [14, 'StringStringEntryProto', 'repeated'],
        }),
        OperatorSetIdProto: message({ domain: [1, 'string'], version: [2, 'int64'] }),
        StringStringEntryProto: message({ key: [1, 'string'], value: [2, 'string'] }),
        GraphProto: message({
          node: [1, 'NodeProto', 'repeated'],
          name: [2, 'string'],
          initializer: [5, 'TensorProto', 'repeated'],
          doc_string: [10, 'string'],
          input: [11, 'ValueInfoProto', 'repeated'],
          output: [12, 'ValueInfoProto', 'repeated'],
          value_info: [13, 'ValueInfoProto', 'repeated'],
        }),
        NodeProto: message({
          input: [1, 'string', 'repeated'],
          output: [2, 'string', 'repeated'],
          name: [3, 'string'],
          op_type: [4, 'string'],
          attribute: [5, 'AttributeProto', 'repeated'],
          doc_string: [6, 'string'],
          domain: [7, 'string'],
        }),
        AttributeProto: message({
          name: [1, 'string'],
          f: [2, 'float'],
          i: [3, 'int64'],
          s: [4, 'bytes'],
          t: [5, 'TensorProto'],
          g: [6, 'GraphProto'],
          floats: [7, 'float', 'repeated'],
          ints: [8, 'int64', 'repeated'],
          strings: [9, 'bytes', 'repeated'],
          tensors: [10, 'TensorProto', 'repeated'],
          graphs: [11, 'GraphProto', 'repeated'],
          doc_string: [13, 'string'],
          type: [20, 'int32'], // enum AttributeType; int32 on the wire
          ref_attr_name: [21, 'string'],
        }),
        ValueInfoProto: message({ name: [1, 'string'], type: [2, 'TypeProto'], doc_string: [3, 'string'] }),
        TypeProto: message(
          { tensor_type: [1, 'Tensor'], denotation: [6, 'string'] },
          { nested: { Tensor: message({ elem_type: [1, 'int32'], shape: [2, 'TensorShapeProto'] }) } },
        ),
        TensorShapeProto: message(
          { dim: [1, 'Dimension', 'repeated'] },
          {
            nested: {
              Dimension: message(
                { dim_value: [1, 'int64'], dim_param: [2, 'string'], denotation: [3, 'string'] },
                { oneofs: { value: { oneof: ['dim_value', 'dim_param'] } } },
              ),
            },
          },
        ),
        TensorProto: (() => {
          const m = message({
            dims: [1, 'int64', 'repeated'],
            data_type: [2, 'int32'],
            float_data: [4, 'float', 'repeated'],
            int32_data: [5, 'int32', 'repeated'],
            int64_data: [7, 'int64', 'repeated'],
            name: [8, 'string'],
            raw_data: [9, 'bytes'],
            doc_string: [12, 'string'],
            data_location: [14, 'int32'],
          })
          for (const k of ['float_data', 'int32_data', 'int64_data']) m.fields[k].options = packed
          return m
        })(),
      },
    },
  },
}

const root = protobuf.Root.fromJSON(schema)
const ModelProto = root.lookupType('onnx.ModelProto')

// TensorProto.DataType and AttributeProto.AttributeType values from onnx.proto.
const ELEM_TYPE: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9 }
const DTYPE_OF: Record<number, DType> = { 1: 'float32', 6: 'int32', 7: 'int64', 9: 'bool' }
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, GRAPHS: 10 } as const
const ARRAY_OF: Record<DType, Function> = {
  float32: Float32Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
}

// raw_data is little-endian; we copy typed-array bytes as they are, which is only right on LE hosts
// (every platform onnxruntime ships for).
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('onnx/proto.ts needs a little-endian host')

const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder()

// --- encoding -----------------------------------------------------------------------------------

/** Serializes a model to ONNX protobuf bytes (opset 17, IR 8 unless given). */
export function encodeModel(model: ModelDef): Uint8Array {
  const opset = model.opset ?? 17
  const nameNode = nodeNamer(model.graph)
  const domains = new Set<string>()
  const graph = encodeGraph(model.graph, nameNode, domains)
  // Nodes of other domains (say com.microsoft) need their operator set imported too.
  const opsetImport = [{ domain: '', version: opset }]
  for (const d of [...domains].sort()) if (d !== '' && d !== 'ai.onnx') opsetImport.push({ domain: d, version: 1 })
  const proto: Record<string, unknown> = {
    ir_version: model.irVersion ?? 8,
    producer_name: model.producerName ?? 'lm-playground',
    graph,
    opset_import: opsetImport,
  }
  if (model.producerVersion) proto.producer_version = model.producerVersion
  if (model.docString) proto.doc_string = model.docString
  if (model.metadata) {
    proto.metadata_props = Object.entries(model.metadata).map(([key, value]) => ({ key, value }))
  }
  return ModelProto.encode(proto).finish()
}

/** Gives unnamed nodes unique names (`MatMul_3`), avoiding every explicit name in the model and its subgraphs. */
function nodeNamer(graph: GraphDef): (node: NodeDef) => string {
  const used = new Set<string>()
  const collect = (g: GraphDef) => {
    for (const n of g.nodes) {
      if (n.name) used.add(n.name)
      for (const a of Object.values(n.attrs ?? {})) {
        if ('g' in a) collect(a.g)
        if ('graphs' in a) a.graphs.forEach(collect)
      }
    }
  }
  collect(graph)
  let counter = 0
  return (node) => {
    if (node.name) return node.name
    let name: string
    do name = `${node.op}_${counter++}`
    while (used.has(name))
    used.add(name)
    return name
  }
}

function encodeGraph(g: GraphDef, nameNode: (n: NodeDef) => string, domains: Set<string>): object {
  return {
    name: g.name,
    node: g.nodes.map((n) => {
      domains.add(n.domain ?? '')
      const node: Record<string, unknown> = {
        input: n.inputs,
        output: n.outputs,
        name: nameNode(n),
        op_type: n.op,
        attribute: Object.entries(n.attrs ?? {}).map(([name, v]) => encodeAttr(name, v, nameNode, domains)),
      }
      if (n.domain) node.domain = n.domain
      return node
    }),
    initializer: g.initializers.map(encodeTensor),
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
  }
}

function encodeAttr(name: string, v: AttrValue, nameNode: (n: NodeDef) => string, domains: Set<string>): object {
  if ('i' in v) return { name, type: ATTR.INT, i: int64(v.i, name) }
  if ('f' in v) return { name, type: ATTR.FLOAT, f: v.f }
  if ('s' in v) return { name, type: ATTR.STRING, s: utf8.encode(v.s) }
  if ('ints' in v) return { name, type: ATTR.INTS, ints: v.ints.map((x) => int64(x, name)) }
  if ('floats' in v) return { name, type: ATTR.FLOATS, floats: v.floats }
  if ('t' in v) return { name, type: ATTR.TENSOR, t: encodeTensor(v.t) }
  if ('g' in v) return { name, type: ATTR.GRAPH, g: encodeGraph(v.g, nameNode, domains) }
  if ('graphs' in v) return { name, type: ATTR.GRAPHS, graphs: v.graphs.map((g) => encodeGraph(g, nameNode, domains)) }
  throw new Error(`attribute ${name}: unknown value ${JSON.stringify(v)}`)
}

// Attribute ints are int64 in ONNX; a JS number is exact only up to 2^53, so refuse anything else
// rather than write a silently different value.
function int64(x: number, what: string): number {
  if (!Number.isSafeInteger(x)) throw new Error(`${what}: ${x} is not a safe integer`)
  return x
}

function encodeTensor(t: TensorDef): object {
  const count = t.dims.reduce((a, b) => a * b, 1)
  if (!(t.data instanceof ARRAY_OF[t.dtype])) {
    throw new Error(`tensor ${t.name}: ${t.dtype} needs a ${ARRAY_OF[t.dtype].name}, got ${t.data.constructor.name}`)
  }
  if (t.data.length !== count) {
    throw new Error(`tensor ${t.name}: dims [${t.dims}] hold ${count} values, data has ${t.data.length}`)
  }
  return {
    name: t.name,
    dims: t.dims.map((d) => int64(d, t.name)),
    data_type: ELEM_TYPE[t.dtype],
    raw_data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  }
}

function encodeValueInfo(v: ValueInfo): object {
  const dim = v.shape.map((d) => (typeof d === 'number' ? { dim_value: int64(d, v.name) } : d === '' ? {} : { dim_param: d }))
  return { name: v.name, type: { tensor_type: { elem_type: ELEM_TYPE[v.dtype], shape: { dim } } } }
}

// --- decoding -----------------------------------------------------------------------------------

type Int64 = number | protobuf.Long
// A decoded proto2 message: absent optional fields read as defaults from the prototype.
type Msg = Record<string, any>
const has = (m: Msg, field: string) => Object.prototype.hasOwnProperty.call(m, field)

class Corrupt extends Error {}

/** Parses ONNX protobuf bytes (for tests and inspection). Throws LmpError on anything that is not such a model. */
export function decodeModel(bytes: Uint8Array): ModelDef {
  let m: Msg
  try {
    m = ModelProto.decode(bytes) as Msg
  } catch (e) {
    throw new LmpError(`corrupt ONNX file: ${oneLine(e)}`)
  }
  try {
    if (!has(m, 'ir_version') || !has(m, 'graph')) throw new Corrupt('no ir_version or no graph')
    const opsets = (m.opset_import as Msg[]).filter((o) => o.domain === '' || o.domain === 'ai.onnx')
    if (opsets.length === 0) throw new Corrupt('no opset_import for the default domain')
    const model: ModelDef = {
      graph: decodeGraph(m.graph),
      opset: toNumber(opsets[0].version),
      irVersion: toNumber(m.ir_version),
    }
    if (has(m, 'producer_name')) model.producerName = m.producer_name
    if (has(m, 'producer_version')) model.producerVersion = m.producer_version
    if (has(m, 'doc_string')) model.docString = m.doc_string
    if (m.metadata_props.length > 0) {
      model.metadata = Object.fromEntries((m.metadata_props as Msg[]).map((e) => [e.key, e.value]))
    }
    return model
  } catch (e) {
    if (e instanceof LmpError) throw e
    throw new LmpError(`corrupt ONNX file: ${oneLine(e)}`)
  }
}

function decodeGraph(g: Msg): GraphDef {
  return {
    name: g.name,
    nodes: (g.node as Msg[]).map((n) => {
      const node: NodeDef = { op: n.op_type, inputs: n.input, outputs: n.output }
      if (has(n, 'name')) node.name = n.name
      if (has(n, 'domain') && n.domain !== '') node.domain = n.domain
      if (n.attribute.length > 0) {
        node.attrs = Object.fromEntries((n.attribute as Msg[]).map((a) => [a.name, decodeAttr(a)]))
      }
      return node
    }),
    initializers: (g.initializer as Msg[]).map(decodeTensor),
    inputs: (g.input as Msg[]).map(decodeValueInfo),
    outputs: (g.output as Msg[]).map(decodeValueInfo),
  }
}

function decodeAttr(a: Msg): AttrValue {
  switch (a.type) {
    case ATTR.INT: return { i: attrInt(a.i) }
    case ATTR.FLOAT: return { f: a.f }
    case ATTR.STRING: return { s: utf8Decoder.decode(a.s) }
    case ATTR.INTS: return { ints: (a.ints as Int64[]).map(attrInt) }
    case ATTR.FLOATS: return { floats: [...a.floats] }
    case ATTR.TENSOR: return { t: decodeTensor(a.t) }
    case ATTR.GRAPH: return { g: decodeGraph(a.g) }
    case ATTR.GRAPHS: return { graphs: (a.graphs as Msg[]).map(decodeGraph) }
  }
  throw new LmpError(`unsupported ONNX attribute ${a.name} of type ${a.type}`)
}

function decodeTensor(t: Msg): TensorDef {
  const dtype = DTYPE_OF[t.data_type]
  if (!dtype) throw new LmpError(`unsupported ONNX tensor type ${t.data_type} (tensor ${t.name})`)
  if (t.data_location === 1) throw new LmpError(`unsupported ONNX external data (tensor ${t.name})`)
  const dims = (t.dims as Int64[]).map(toNumber)
  const count = dims.reduce((a, b) => a * b, 1)
  let data: TensorDef['data']
  if (has(t, 'raw_data')) {
    const raw: Uint8Array = t.raw_data
    const size = (ARRAY_OF[dtype] as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT
    if (raw.byteLength !== count * size) {
      throw new Corrupt(`tensor ${t.name} has ${raw.byteLength} bytes of raw_data, ${dtype}[${dims}] needs ${count * size}`)
    }
    // Copy out: the bytes sit at an arbitrary offset of the file, unaligned for a typed-array view
    // (and in Node they are a Buffer, whose slice() would share memory rather than copy).
    const bytes = new Uint8Array(raw.byteLength)
    bytes.set(raw)
    const copy = bytes.buffer
    data = dtype === 'float32' ? new Float32Array(copy)
      : dtype === 'int64' ? new BigInt64Array(copy)
      : dtype === 'int32' ? new Int32Array(copy)
      : new Uint8Array(copy)
  } else {
    // Other writers may use the typed fields instead of raw_data.
    data = dtype === 'float32' ? Float32Array.from(t.float_data as number[])
      : dtype === 'int64' ? BigInt64Array.from(t.int64_data as Int64[], longToBigInt)
      : dtype === 'int32' ? Int32Array.from(t.int32_data as number[])
      : Uint8Array.from(t.int32_data as number[])
    if (data.length !== count) throw new Corrupt(`tensor ${t.name} has ${data.length} values, dims [${dims}] need ${count}`)
  }
  return { name: t.name, dtype, dims, data }
}

function decodeValueInfo(v: Msg): ValueInfo {
  const tensorType: Msg | undefined = v.type?.tensor_type
  if (!tensorType) throw new LmpError(`unsupported ONNX value ${v.name}: not a tensor`)
  const dtype = DTYPE_OF[tensorType.elem_type]
  if (!dtype) throw new LmpError(`unsupported ONNX tensor type ${tensorType.elem_type} (value ${v.name})`)
  const dims: Msg[] = tensorType.shape?.dim ?? []
  const shape = dims.map((d) => (has(d, 'dim_value') ? toNumber(d.dim_value) : has(d, 'dim_param') ? (d.dim_param as string) : ''))
  return { name: v.name, dtype, shape }
}

const longToNumber = (x: Int64) => (typeof x === 'number' ? x : protobuf.util.LongBits.from(x).toNumber(false))
const longToBigInt = (x: Int64) =>
  typeof x === 'number' ? BigInt(x) : BigInt.asIntN(64, (BigInt(x.high >>> 0) << 32n) | BigInt(x.low >>> 0))

function toNumber(x: Int64): number {
  const n = longToNumber(x)
  if (!Number.isSafeInteger(n)) throw new Corrupt(`integer ${longToBigInt(x)} out of range`)
  return n
}

// Other writers put INT64_MAX in attributes to mean "to the end"; keep such values, approximately.
const attrInt = longToNumber

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ')
