// Training speed-ups on wasm in models/tf-ops.ts: Identity and same-dtype Cast re-registered to share the
// data (the engine clones every tensor it saves for a gradient, and the stock wasm kernels copied each one),
// and a weight's gradient computed in the orientation whose packed operand is narrower.
import t from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { initBackend } from '../../models/backend.ts'
import { TfOps, useWeightGradPaths, useSharedIdentity } from '../../models/tf-ops.ts'

const backend = await initBackend()
const wasmOnly = { skip: backend !== 'wasm' && 'a wasm kernel' }

t.test("wasm's Identity and same-dtype Cast share the data (the engine clones every tensor it saves for a gradient)", wasmOnly, async (t) => {
  const w = tf.backend() as unknown as { numDataIds(): number }
  const x = tf.tensor([1.5, -2, 3], [3])
  const ids = w.numDataIds()
  const y = tf.clone(x)
  const z = tf.cast(x, 'float32')
  t.equal(w.numDataIds(), ids, 'no new buffer for a clone or a float32 → float32 cast')
  x.dispose()
  t.same(Array.from(y.dataSync()), [1.5, -2, 3], 'the clone outlives the original')
  y.dispose()
  t.same(Array.from(z.dataSync()), [1.5, -2, 3])
  z.dispose()
  t.equal(w.numDataIds(), ids - 1, 'freed with its last handle')
  const i = tf.cast(tf.tensor([1.7, -2.2]), 'int32')
  t.same(Array.from(i.dataSync()), [1, -2], 'a cast to another dtype still converts')
  const v = tf.variable(tf.tensor([1, 2]))
  const saved = tf.clone(v)
  v.assign(tf.tensor([5, 6]))
  t.same(Array.from(saved.dataSync()), [1, 2], "a variable's assign leaves an earlier clone alone")
})

t.test('turned off (the before/after bench), a clone is a copy again', wasmOnly, async (t) => {
  const w = tf.backend() as unknown as { numDataIds(): number }
  const x = tf.tensor([1, 2])
  const ids = w.numDataIds()
  useSharedIdentity(false)
  try {
    const y = tf.clone(x)
    t.equal(w.numDataIds(), ids + 1)
    t.same(Array.from(y.dataSync()), [1, 2])
  } finally {
    useSharedIdentity(true)
  }
})

t.test("a weight's gradient in either orientation equals tf.matMul's, for a wider and a narrower output", async (t) => {
  for (const [k, n] of [[3, 7], [7, 3]]) {
    const x = tf.randomUniform([5, k], -1, 1, 'float32', 1)
    const w = tf.variable(tf.randomUniform([k, n], -1, 1, 'float32', 2))
    const dy = tf.randomUniform([5, n], -1, 1, 'float32', 3)
    const grad = (f: () => tf.Tensor) => Array.from(tf.variableGrads(() => tf.sum(tf.mul(f(), dy)) as tf.Scalar, [w]).grads[w.name].dataSync())
    const plain = grad(() => tf.matMul(x, w))
    for (const paths of [true, false]) {
      useWeightGradPaths(paths)
      try {
        const fast = grad(() => new TfOps({ w }, true).matMul(x, w))
        t.ok(fast.every((g, i) => Math.abs(g - plain[i]) < 1e-5), `[${k}, ${n}], weight-gradient paths ${paths ? "on" : "off"}`)
      } finally {
        useWeightGradPaths(true)
      }
    }
  }
})

t.test('one input times several weights (q, k, v): its transpose is shared, gradients as tf.matMul, no tensor left', async (t) => {
  const x = tf.randomUniform([2, 5, 4], -1, 1, 'float32', 4)
  const ws = [1, 2, 3].map((seed) => tf.variable(tf.randomUniform([4, 3], -1, 1, 'float32', seed)))
  const loss = (mm: (a: tf.Tensor, w: tf.Tensor) => tf.Tensor) => () =>
    tf.addN(ws.map((w, i) => tf.sum(tf.mul(mm(x, w), i + 1)))) as tf.Scalar
  const plain = tf.variableGrads(loss((a, w) => tf.reshape(tf.matMul(tf.reshape(a, [-1, 4]), w), [2, 5, 3])), ws).grads
  const before = tf.memory().numTensors
  const params = Object.fromEntries(ws.map((w) => [w.name, w]))
  const o = new TfOps(params, true)
  let fast!: { value: tf.Scalar; grads: tf.NamedTensorMap }
  const info = await tf.profile(() => {
    fast = tf.variableGrads(loss((a, w) => o.matMul(a, w)), ws)
  })
  const inputTransposes = info.kernels.filter((k) => k.name === 'Transpose' && k.inputShapes[0]?.join() === '10,4')
  if (backend === 'wasm') t.equal(inputTransposes.length, 1, 'the input is transposed once for the three weight gradients')
  for (const w of ws) t.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(fast.grads[w.name], plain[w.name]))).dataSync()[0]) < 1e-5, `gradient of ${w.name}`)
  tf.dispose([fast.value, ...Object.values(fast.grads)])
  t.equal(tf.memory().numTensors, before, 'every kept transpose disposed after its last use')
})
