// Hand-built graphs, serialized by onnx/proto.ts, run in onnxruntime-node and in onnxruntime-web
// (WASM, in this Node process), and compared with values computed here in JS.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'
import { decodeModel, encodeModel, type GraphDef, type ModelDef, type TensorDef } from '../../onnx/proto.ts'
import { LmpError } from '../../src/errors.ts'

// One thread: no worker threads in the test process. ort-web finds its .wasm beside its own
// module file (node_modules/onnxruntime-web/dist), so nothing else needs configuring in Node.
ortWeb.env.wasm.numThreads = 1

type Feed = { dtype: 'float32' | 'int64'; data: Float32Array | BigInt64Array; dims: number[] }
type Result = Record<string, { data: ArrayLike<number | bigint>; dims: readonly number[] }>

/** Runs the model in both runtimes; returns [node outputs, web outputs]. */
async function runBoth(bytes: Uint8Array, feeds: Record<string, Feed>): Promise<[Result, Result]> {
  const node = await ort.InferenceSession.create(bytes)
  const web = await ortWeb.InferenceSession.create(bytes)
  const nodeFeeds = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new ort.Tensor(f.dtype, f.data, f.dims)]))
  const webFeeds = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new ortWeb.Tensor(f.dtype, f.data, f.dims)]))
  const out = [(await node.run(nodeFeeds)) as Result, (await web.run(webFeeds)) as Result] as [Result, Result]
  await node.release()
  await web.release()
  return out
}

function close(t: Tap, actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 1e-5) {
  t.equal(actual.length, expected.length, `${what}: length`)
  let worst = 0
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]))
  t.ok(worst <= tol, `${what}: max abs diff ${worst} <= ${tol}`)
}
type Tap = Test

/** Asserts that fn throws an LmpError with a one-line message matching re. */
function throwsLmp(t: Tap, fn: () => unknown, re: RegExp, what?: string) {
  try {
    fn()
    t.fail(`${what ?? re}: did not throw`)
  } catch (e) {
    t.ok(e instanceof LmpError && re.test(e.message) && !e.message.includes('\n'), `${what ?? re}: ${(e as Error).message}`)
  }
}

const f32 = (name: string, dims: number[], values: number[]): TensorDef => ({ name, dtype: 'float32', dims, data: new Float32Array(values) })
const i64 = (name: string, dims: number[], values: number[]): TensorDef => ({ name, dtype: 'int64', dims, data: BigInt64Array.from(values, BigInt) })
const floats = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * 2)

/** Every model built below, so the onnx.checker test can check them all. */
const built: Record<string, ModelDef> = {}
const model = (name: string, graph: GraphDef, opset = 17): Uint8Array => {
  built[name] = { graph, opset }
  return encodeModel(built[name])
}

t.test('MatMul + Add with initializers, symbolic batch dim', async (t) => {
  const W = floats(6, 1), b = [0.5, -1]
  const bytes = model('matmul', {
    name: 'matmul',
    nodes: [
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
    ],
    initializers: [f32('W', [3, 2], W), f32('b', [2], b)],
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 3] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 2] }],
  })
  for (const batch of [1, 3]) {
    const x = floats(batch * 3, 2)
    const expected: number[] = []
    for (let r = 0; r < batch; r++) {
      for (let c = 0; c < 2; c++) {
        let s = b[c]
        for (let k = 0; k < 3; k++) s += Math.fround(x[r * 3 + k]) * Math.fround(W[k * 2 + c])
        expected.push(s)
      }
    }
    const outs = await runBoth(bytes, { x: { dtype: 'float32', data: new Float32Array(x), dims: [batch, 3] } })
    for (const [runtime, out] of [['node', outs[0]], ['web', outs[1]]] as const) {
      t.same([...out.y.dims], [batch, 2], `${runtime} dims, batch ${batch}`)
      close(t, out.y.data as Float32Array, expected, `${runtime} y, batch ${batch}`)
    }
  }
})

t.test('Gather on int64 ids', async (t) => {
  const table = floats(5 * 3, 3)
  const bytes = model('gather', {
    name: 'gather',
    nodes: [{ op: 'Gather', inputs: ['embedding', 'input_ids'], outputs: ['h'], attrs: { axis: { i: 0 } } }],
    initializers: [f32('embedding', [5, 3], table)],
    inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] }],
    outputs: [{ name: 'h', dtype: 'float32', shape: ['batch', 'sequence', 3] }],
  })
  const ids = [4, 0, 2, 2, 1, 3]
  const expected = ids.flatMap((id) => table.slice(id * 3, id * 3 + 3)).map(Math.fround)
  const outs = await runBoth(bytes, { input_ids: { dtype: 'int64', data: BigInt64Array.from(ids, BigInt), dims: [2, 3] } })
  for (const [runtime, out] of [['node', outs[0]], ['web', outs[1]]] as const) {
    t.same([...out.h.dims], [2, 3, 3], `${runtime} dims`)
    close(t, out.h.data as Float32Array, expected, `${runtime} h`, 0)
  }
})

t.test('Softmax over the last axis', async (t) => {
  const bytes = model('softmax', {
    name: 'softmax',
    nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['p'], attrs: { axis: { i: -1 } } }],
    initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 4] }],
    outputs: [{ name: 'p', dtype: 'float32', shape: [2, 4] }],
  })
  const x = [1, 2, 3, 4, -10, 0, 10, 20]
  const expected = [0, 1].flatMap((r) => {
    const row = x.slice(r * 4, r * 4 + 4)
    const m = Math.max(...row)
    const e = row.map((v) => Math.exp(v - m))
    const s = e.reduce((a, b) => a + b)
    return e.map((v) => v / s)
  })
  const outs = await runBoth(bytes, { x: { dtype: 'float32', data: new Float32Array(x), dims: [2, 4] } })
  for (const [runtime, out] of [['node', outs[0]], ['web', outs[1]]] as const) {
    close(t, out.p.data as Float32Array, expected, `${runtime} p`, 1e-6)
  }
})

t.test('LayerNormalization (opset 17)', async (t) => {
  const D = 5, eps = 1e-5
  const scale = floats(D, 4), bias = floats(D, 5)
  const bytes = model('layernorm', {
    name: 'layernorm',
    nodes: [{ op: 'LayerNormalization', inputs: ['x', 'scale', 'bias'], outputs: ['y'], attrs: { axis: { i: -1 }, epsilon: { f: eps } } }],
    initializers: [f32('scale', [D], scale), f32('bias', [D], bias)],
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 'sequence', D] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 'sequence', D] }],
  })
  const x = floats(2 * D, 6).map(Math.fround)
  const expected = [0, 1].flatMap((r) => {
    const row = x.slice(r * D, r * D + D)
    const mean = row.reduce((a, b) => a + b) / D
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / D
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * Math.fround(scale[i]) + Math.fround(bias[i]))
  })
  const outs = await runBoth(bytes, { x: { dtype: 'float32', data: new Float32Array(x), dims: [1, 2, D] } })
  for (const [runtime, out] of [['node', outs[0]], ['web', outs[1]]] as const) {
    close(t, out.y.data as Float32Array, expected, `${runtime} y`)
  }
})

t.test('Scan over axis 1: running-sum state and one output per step, body reading an outer initializer', async (t) => {
  const B = 2, T = 3, D = 2
  const w = [2, -0.5]
  // Body: state s, slice x_t -> s' = s + x_t, y_t = s' * w (w lives in the main graph).
  const body: GraphDef = {
    name: 'body',
    nodes: [
      { op: 'Add', inputs: ['s_in', 'x_t'], outputs: ['s_out'] },
      { op: 'Mul', inputs: ['s_out', 'w'], outputs: ['y_t'] },
    ],
    initializers: [],
    inputs: [
      { name: 's_in', dtype: 'float32', shape: ['batch', D] },
      { name: 'x_t', dtype: 'float32', shape: ['batch', D] },
    ],
    outputs: [
      { name: 's_out', dtype: 'float32', shape: ['batch', D] },
      { name: 'y_t', dtype: 'float32', shape: ['batch', D] },
    ],
  }
  const bytes = model('scan', {
    name: 'scan',
    nodes: [{
      op: 'Scan',
      inputs: ['s0', 'x'],
      outputs: ['s_final', 'y'],
      attrs: { body: { g: body }, num_scan_inputs: { i: 1 }, scan_input_axes: { ints: [1] }, scan_output_axes: { ints: [1] } },
    }],
    initializers: [f32('w', [D], w)],
    inputs: [
      { name: 's0', dtype: 'float32', shape: ['batch', D] },
      { name: 'x', dtype: 'float32', shape: ['batch', 'sequence', D] },
    ],
    outputs: [
      { name: 's_final', dtype: 'float32', shape: ['batch', D] },
      { name: 'y', dtype: 'float32', shape: ['batch', 'sequence', D] },
    ],
  })
  const s0 = [1, 2, 3, 4]
  const x = floats(B * T * D, 7).map(Math.fround)
  const sFinal: number[] = [], y = new Array(B * T * D).fill(0)
  for (let b = 0; b < B; b++) {
    const s = s0.slice(b * D, b * D + D)
    for (let step = 0; step < T; step++) {
      for (let d = 0; d < D; d++) {
        s[d] += x[(b * T + step) * D + d]
        y[(b * T + step) * D + d] = s[d] * w[d]
      }
    }
    sFinal.push(...s)
  }
  const outs = await runBoth(bytes, {
    s0: { dtype: 'float32', data: new Float32Array(s0), dims: [B, D] },
    x: { dtype: 'float32', data: new Float32Array(x), dims: [B, T, D] },
  })
  for (const [runtime, out] of [['node', outs[0]], ['web', outs[1]]] as const) {
    t.same([...out.y.dims], [B, T, D], `${runtime} y dims`)
    close(t, out.s_final.data as Float32Array, sFinal, `${runtime} final state`)
    close(t, out.y.data as Float32Array, y, `${runtime} per-step outputs`)
  }
})

t.test('Shape/Slice/Concat with a zero-length past (the KV-cache case)', async (t) => {
  const bytes = model('kvcache', {
    name: 'kvcache',
    nodes: [
      { op: 'Concat', inputs: ['past', 'new'], outputs: ['present'], attrs: { axis: { i: 2 } } },
      { op: 'Shape', inputs: ['past'], outputs: ['past_shape'] },
      { op: 'Slice', inputs: ['past_shape', 'two', 'three'], outputs: ['past_length'] },
      { op: 'Shape', inputs: ['present'], outputs: ['present_shape'] },
      { op: 'Slice', inputs: ['present_shape', 'two', 'three'], outputs: ['total_length'] },
    ],
    initializers: [i64('two', [1], [2]), i64('three', [1], [3])],
    inputs: [
      { name: 'past', dtype: 'float32', shape: ['batch', 2, 'past', 4] },
      { name: 'new', dtype: 'float32', shape: ['batch', 2, 'sequence', 4] },
    ],
    outputs: [
      { name: 'present', dtype: 'float32', shape: ['batch', 2, 'total', 4] },
      { name: 'past_length', dtype: 'int64', shape: [1] },
      { name: 'total_length', dtype: 'int64', shape: [1] },
    ],
  })
  const step1 = floats(8, 8), step2 = floats(8, 9)
  const first = await runBoth(bytes, {
    past: { dtype: 'float32', data: new Float32Array(0), dims: [1, 2, 0, 4] },
    new: { dtype: 'float32', data: new Float32Array(step1), dims: [1, 2, 1, 4] },
  })
  for (const [runtime, out] of [['node', first[0]], ['web', first[1]]] as const) {
    t.same([...out.present.dims], [1, 2, 1, 4], `${runtime} present dims after the first step`)
    close(t, out.present.data as Float32Array, step1, `${runtime} present after the first step`)
    t.same(Array.from(out.past_length.data), [0n], `${runtime} past length 0`)
    t.same(Array.from(out.total_length.data), [1n], `${runtime} total length 1`)
  }
  // Feed present back as past, as generation does.
  const second = await runBoth(bytes, {
    past: { dtype: 'float32', data: first[0].present.data as Float32Array, dims: [1, 2, 1, 4] },
    new: { dtype: 'float32', data: new Float32Array(step2), dims: [1, 2, 1, 4] },
  })
  const s1 = step1.map(Math.fround), s2 = step2.map(Math.fround)
  const expected = [...s1.slice(0, 4), ...s2.slice(0, 4), ...s1.slice(4), ...s2.slice(4)] // per head: old row, new row
  for (const [runtime, out] of [['node', second[0]], ['web', second[1]]] as const) {
    t.same([...out.present.dims], [1, 2, 2, 4], `${runtime} present dims after the second step`)
    close(t, out.present.data as Float32Array, expected, `${runtime} present after the second step`, 0)
    t.same(Array.from(out.total_length.data), [2n], `${runtime} total length 2`)
  }
})

t.test('symbolic dims reach the runtime', async (t) => {
  const bytes = encodeModel(built.kvcache)
  const session = await ort.InferenceSession.create(bytes)
  const meta = (session as unknown as { inputMetadata: { name: string; shape: (number | string)[] }[] }).inputMetadata
  t.same(meta.map((m) => [m.name, m.shape]), [
    ['past', ['batch', 2, 'past', 4]],
    ['new', ['batch', 2, 'sequence', 4]],
  ])
  await session.release()
  const back = decodeModel(bytes)
  t.same(back.graph.outputs[0].shape, ['batch', 2, 'total', 4])
})

t.test('encode -> decode round trip', async (t) => {
  const graph: GraphDef = {
    name: 'everything',
    nodes: [
      { op: 'Identity', inputs: ['x'], outputs: ['a'], name: 'Identity_0' },
      { op: 'Identity', inputs: ['a'], outputs: ['b'] }, // gets a generated name that avoids Identity_0
      {
        op: 'Custom', domain: 'com.example', inputs: ['b', ''], outputs: ['c'],
        attrs: {
          i: { i: -3 }, big: { i: 2 ** 40 }, f: { f: 0.1 }, s: { s: 'héllo' }, ints: { ints: [0, -1, 2 ** 33] },
          floats: { floats: [1.5, -2] },
          t: { t: { name: 'mask', dtype: 'bool', dims: [3], data: new Uint8Array([1, 0, 1]) } },
          g: { g: { name: 'sub', nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], initializers: [], inputs: [], outputs: [{ name: 'y', dtype: 'float32', shape: [] }] } },
          graphs: { graphs: [] },
        },
      },
    ],
    initializers: [
      f32('w', [2, 2], [1, -2, 3.5, 1e-8]),
      i64('ids', [3], [-1, 0, 2 ** 40]),
      { name: 'n', dtype: 'int32', dims: [], data: new Int32Array([7]) },
      f32('empty', [0, 3], []),
    ],
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', '', 0, 5] }],
    outputs: [{ name: 'c', dtype: 'float32', shape: ['batch'] }],
  }
  const bytes = encodeModel({ graph, producerName: 'test', docString: 'doc', metadata: { k: 'v', empty: '' } })
  const back = decodeModel(bytes)
  t.equal(back.opset, 17)
  t.equal(back.irVersion, 8)
  t.equal(back.producerName, 'test')
  t.equal(back.docString, 'doc')
  t.same(back.metadata, { k: 'v', empty: '' })
  const names = back.graph.nodes.map((n) => n.name)
  t.equal(names[0], 'Identity_0')
  t.equal(new Set(names).size, 3, 'node names are unique')
  const sub = back.graph.nodes[2].attrs!.g as { g: GraphDef }
  t.notOk(names.includes(sub.g.nodes[0].name), 'subgraph node names do not clash either')
  t.equal(back.graph.nodes[2].domain, 'com.example')
  const attrs = back.graph.nodes[2].attrs!
  t.same(attrs.i, { i: -3 })
  t.same(attrs.big, { i: 2 ** 40 })
  t.same(attrs.f, { f: Math.fround(0.1) })
  t.same(attrs.s, { s: 'héllo' })
  t.same(attrs.ints, { ints: [0, -1, 2 ** 33] })
  t.same(attrs.floats, { floats: [1.5, -2] })
  t.same(attrs.graphs, { graphs: [] })
  const mask = (attrs.t as { t: TensorDef }).t
  t.same([mask.dtype, mask.dims, [...mask.data]], ['bool', [3], [1, 0, 1]])
  t.same(back.graph.nodes[2].inputs, ['b', ''], 'an empty input name (omitted optional input) survives')
  const [w, ids, n, empty] = back.graph.initializers
  t.ok(w.data instanceof Float32Array)
  t.same([...w.data], [1, -2, 3.5, Math.fround(1e-8)])
  t.ok(ids.data instanceof BigInt64Array)
  t.same([...ids.data], [-1n, 0n, 2n ** 40n])
  t.same([n.dtype, n.dims, [...n.data]], ['int32', [], [7]])
  t.same([empty.dims, empty.data.length], [[0, 3], 0])
  t.same(back.graph.inputs, graph.inputs, 'symbolic, unknown and zero dims')
  t.same(back.graph.outputs, graph.outputs)
  t.same(encodeModel(back), bytes, 're-encoding the decoded model gives the same bytes')
})

t.test('the custom domain gets an opset import', async (t) => {
  const bytes = encodeModel({
    graph: { name: 'g', nodes: [{ op: 'Foo', domain: 'com.example', inputs: ['x'], outputs: ['y'] }], initializers: [], inputs: [], outputs: [] },
  })
  // OperatorSetIdProto { domain = 1: "com.example", version = 2: 1 } appears in the bytes.
  const needle = Buffer.concat([Buffer.from([0x0a, 11]), Buffer.from('com.example'), Buffer.from([0x10, 1])])
  t.ok(Buffer.from(bytes).includes(needle))
})

t.test('decodeModel rejects what is not an ONNX model', async (t) => {
  let seed = 12345
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff
  for (let i = 0; i < 200; i++) {
    const bytes = Uint8Array.from({ length: 1 + (i % 50) * 7 }, random)
    throwsLmp(t, () => decodeModel(bytes), /^corrupt ONNX file: /, `random bytes #${i}`)
  }
  throwsLmp(t, () => decodeModel(new Uint8Array(0)), /^corrupt ONNX file: /, 'no bytes')
  throwsLmp(t, () => decodeModel(new TextEncoder().encode('{"not": "onnx"}')), /^corrupt ONNX file: /, 'JSON')
  const good = encodeModel(built.matmul)
  throwsLmp(t, () => decodeModel(good.subarray(0, good.length - 5)), /^corrupt ONNX file: /, 'truncated model')
})

t.test('encodeModel refuses malformed tensors and integers', async (t) => {
  const withInit = (init: TensorDef) => ({ graph: { name: 'g', nodes: [], initializers: [init], inputs: [], outputs: [] } })
  t.throws(() => encodeModel(withInit(f32('w', [2, 2], [1, 2, 3]))), /dims \[2,2\] hold 4 values, data has 3/)
  t.throws(() => encodeModel(withInit({ name: 'w', dtype: 'int64', dims: [1], data: new Float32Array(1) })), /int64 needs a BigInt64Array/)
  t.throws(() => encodeModel({
    graph: { name: 'g', nodes: [{ op: 'Slice', inputs: [], outputs: [], attrs: { ends: { ints: [2 ** 63] } } }], initializers: [], inputs: [], outputs: [] },
  }), /not a safe integer/)
})

// Debian's python3-onnx installs for /usr/bin/python3; `python3` on PATH may be another interpreter.
// Run from a temp dir so that the repo's onnx/ folder cannot shadow the onnx package.
const python = ['/usr/bin/python3', 'python3'].find(
  (p) => spawnSync(p, ['-c', 'import onnx.checker'], { cwd: tmpdir() }).status === 0,
)

t.test('onnx.checker accepts the models (full_check)', {
  skip: python ? false : 'python3-onnx is not installed (apt-get install -y python3-onnx)',
}, async (t) => {
  const dir = t.testdir()
  t.ok(Object.keys(built).length >= 6, 'models were built by the tests above')
  for (const [name, m] of Object.entries(built)) {
    const path = join(dir, `${name}.onnx`)
    writeFileSync(path, encodeModel(m))
    const r = spawnSync(python!, ['-c', 'import onnx, sys; onnx.checker.check_model(sys.argv[1], full_check=True)', path], { cwd: dir, encoding: 'utf8' })
    t.equal(r.status, 0, `${name}: ${r.stderr.trim().split('\n').pop() ?? ''}`)
  }
})
