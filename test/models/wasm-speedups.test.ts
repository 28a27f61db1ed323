// wasm's Identity and same-dtype Cast re-registered to share the data (models/tf-ops.ts): the engine clones
// every tensor it saves for a gradient, and the stock wasm kernels copied each one.
import t from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { initBackend } from '../../models/backend.ts'
import { useSharedIdentity } from '../../models/tf-ops.ts'

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
