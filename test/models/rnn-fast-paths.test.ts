// The recurrent models' fast training paths against the plain ones they replace, values and gradients:
// the fused wasm LSTM cell (models/lstm-cell.ts) against the cell from elementary ops (models/rnn.ts), and
// layer 0 projected once per vocabulary entry (models/lm.ts forwardTf) against every position projected;
// the wasm embedding kernels (row gather and its UnsortedSegmentSum gradient) against one-hot products.
import t, { type Test } from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { initBackend } from '../../models/backend.ts'
import { createModel, forwardTf, initWeights, lossTf, MODEL_DEFAULTS, usePerTokenProjection, zeroStateTf, type ModelConfig } from '../../models/lm.ts'
import { useFusedLstmCell } from '../../models/lstm-cell.ts'
import { TfOps } from '../../models/tf-ops.ts'
import { createRng } from '../../src/infer/rng.ts'

const backend = await initBackend()
const V = 11
// 3 rows × 6 steps = 18 positions > V: the per-token projection applies.
const ids = [[3, 4, 5, 6, 7, 8], [9, 10, 4, 3, 5, 5], [6, 6, 7, 3, 10, 4]]

let runs = 0

/** Loss, logits, final state and the gradient of every weight, with the given fast paths on or off. */
function run(model: string, paths: { fused: boolean; perToken: boolean; training?: boolean }, over: Partial<ModelConfig> = {}) {
  const config = { ...MODEL_DEFAULTS, model, vocabSize: V, dEmb: 5, dHid: 6, nBlk: 7, dBlk: 1, nLyr: 2, initFb: 2, ...over } as ModelConfig
  const m = createModel(config)
  const rng = createRng(11)
  const data = initWeights(m, () => rng.next())
  const vars: Record<string, tf.Variable> = {}
  const tag = `${model}-${paths.fused}-${paths.perToken}-${++runs}-`
  for (const [n, s] of Object.entries(m.params())) vars[n] = tf.variable(tf.tensor(data[n], s.shape), true, tag + n)
  useFusedLstmCell(paths.fused)
  usePerTokenProjection(paths.perToken)
  try {
    const start = tf.tidy(() => zeroStateTf(m, ids.length).map((s) => tf.add(s, 0.3)))
    let logits: number[] = []
    let state: number[] = []
    const { value, grads } = tf.variableGrads(() => {
      const out = forwardTf(m, new TfOps(vars, paths.training ?? true), ids, start)
      logits = Array.from((out.logits as tf.Tensor).dataSync())
      state = out.state.flatMap((s) => Array.from(s.dataSync()))
      // The final state enters the loss too, so that its gradient path (dh, dc of the last step) is checked.
      return tf.add(lossTf(out.logits, ids.map((r) => r.slice(1).concat(3))).loss, tf.addN(out.state.map((s) => tf.mean(tf.square(s)))))
    }, Object.values(vars))
    const gradients = Object.fromEntries(Object.entries(grads).map(([n, g]) => [n.replace(tag, ''), Array.from(g.dataSync())]))
    return { loss: value.dataSync()[0], logits, state, gradients }
  } finally {
    useFusedLstmCell(true)
    usePerTokenProjection(true)
  }
}

const maxDiff = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0)

function same(t: Test, fast: ReturnType<typeof run>, plain: ReturnType<typeof run>) {
  t.ok(Math.abs(fast.loss - plain.loss) < 1e-6, `loss ${fast.loss} vs ${plain.loss}`)
  t.ok(maxDiff(fast.logits, plain.logits) < 1e-5, 'logits')
  t.ok(maxDiff(fast.state, plain.state) < 1e-5, 'final state')
  t.same(Object.keys(fast.gradients).sort(), Object.keys(plain.gradients).sort())
  for (const [name, g] of Object.entries(plain.gradients)) {
    const scale = Math.max(1e-3, ...g.map(Math.abs))
    t.ok(maxDiff(fast.gradients[name], g) / scale < 1e-4, `gradient of ${name}`)
  }
  t.ok(Object.values(plain.gradients).every((g) => g.some((x) => x !== 0)), 'every weight gets a gradient')
}

const wasmOnly = { skip: backend !== 'wasm' && 'the fused cell is a wasm kernel' }
for (const model of ['LSTM-2000', 'LSTM-1997']) {
  for (const [nBlk, dBlk] of [[7, 1], [3, 2]]) {
    t.test(`${model}, ${nBlk} blocks of ${dBlk}: the fused cell equals the elementary one`, wasmOnly, async (t) => {
      same(t, run(model, { fused: true, perToken: false }, { nBlk, dBlk }), run(model, { fused: false, perToken: false }, { nBlk, dBlk }))
    })
  }
}

for (const model of ['LSTM-2000', 'GRU', 'Elman-Net', 'LSTM-2002']) {
  t.test(`${model}: layer 0 projected per vocabulary entry equals every position projected`, async (t) => {
    same(t, run(model, { fused: true, perToken: true }), run(model, { fused: true, perToken: false }))
  })
}

// Training on wasm sums the recurrent weight's gradient once over the sequence (TfOps.deferWeightGrad); the
// run starts from a state that no weight feeds, as a carried TBPTT state does. The first step's (h, dy) was
// once left out there (TF.js's backprop skips that product): fc_h2h's gradient was ~20% off with --tbptt.
for (const model of ['Elman-Net', 'GRU', 'LSTM-2000']) {
  t.test(`${model}: the recurrent weight's gradient summed over the sequence equals the per-step one, from a carried state`, async (t) => {
    same(t, run(model, { fused: true, perToken: true, training: true }), run(model, { fused: true, perToken: true, training: false }))
  })
}

t.test('with dropout on the embedding path, training projects every position (the masks differ)', async (t) => {
  const config = { ...MODEL_DEFAULTS, model: 'GRU', vocabSize: V, dEmb: 5, dHid: 6, nLyr: 1, pHid: 0.5 } as ModelConfig
  const m = createModel(config)
  const rng = createRng(4)
  const data = initWeights(m, () => rng.next())
  const params = Object.fromEntries(Object.entries(m.params()).map(([n, s]) => [n, tf.tensor(data[n], s.shape)]))
  const rowsProjected = async (training: boolean) => {
    const info = await tf.profile(() => tf.tidy(() => { forwardTf(m, new TfOps(params, training, () => 7), ids) }))
    // The first product by fc_x2h [6, 18] (the recurrent fc_h2h ones follow, with 3 rows): V or 18 rows.
    return info.kernels.find((k) => k.name === 'BatchMatMul' && k.inputShapes[1]?.[1] === 18)?.inputShapes[0]?.[0]
  }
  t.equal(await rowsProjected(true), 18, 'training with dropout: 18 positions')
  t.equal(await rowsProjected(false), V, 'evaluation: V rows')
})

t.test('training on wasm runs the fused kernel, and only where it applies', wasmOnly, async (t) => {
  const kernelsOf = async (model: string, dBlk: number) => {
    const m = createModel({ ...MODEL_DEFAULTS, model, vocabSize: V, dEmb: 4, nBlk: 3, dBlk, nLyr: 1 } as ModelConfig)
    const rng = createRng(2)
    const data = initWeights(m, () => rng.next())
    const params = Object.fromEntries(Object.entries(m.params()).map(([n, s]) => [n, tf.tensor(data[n], s.shape)]))
    const info = await tf.profile(() => tf.tidy(() => { forwardTf(m, new TfOps(params), ids) }))
    return info.kernels.map((k) => k.name)
  }
  t.ok((await kernelsOf('LSTM-2000', 1)).includes('LmpLstmCell'), 'LSTM-2000, one unit per block')
  t.ok((await kernelsOf('LSTM-1997', 2)).includes('LmpLstmCell'), 'LSTM-1997, blocks of two units')
  t.notOk((await kernelsOf('LSTM-2002', 1)).includes('LmpLstmCell'), 'peepholes: elementary ops')
})

t.test('embedding lookup and its gradient (repeated ids summed) equal one-hot products', async (t) => {
  const table = tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]])
  const rows = tf.tensor2d([[2, 0], [2, 3]], [2, 2], 'int32')
  const dy = tf.tensor3d([[[1, 0, 2], [0.5, 0.5, 0.5]], [[3, 1, 1], [1, 2, 3]]])
  const o = new TfOps({})
  t.same(o.embed(table, rows).arraySync(), [[[7, 8, 9], [1, 2, 3]], [[7, 8, 9], [10, 11, 12]]])
  const [gradient] = tf.grads((w: tf.Tensor) => tf.sum(tf.mul(o.embed(w, rows), dy)))([table])
  t.same(gradient.arraySync(), [[0.5, 0.5, 0.5], [0, 0, 0], [4, 1, 3], [1, 2, 3]], 'row 2 gets both of its positions; unused rows 0')
  t.throws(() => o.embed(table, tf.tensor1d([4], 'int32')).dataSync(), 'an id outside the table is an error, not garbage')
})

t.test('a sequence of one step trains (TF.js hands a one-output kernel\'s gradient a tensor, not a list)', async (t) => {
  for (const model of ['GRU', 'LSTM-2000', 'Elman-Net']) {
    const m = createModel({ ...MODEL_DEFAULTS, model, vocabSize: V, dEmb: 4, dHid: 5, nBlk: 5, dBlk: 1, nLyr: 2 } as ModelConfig)
    const rng = createRng(3)
    const data = initWeights(m, () => rng.next())
    const vars = Object.fromEntries(Object.entries(m.params()).map(([n, s]) => [n, tf.variable(tf.tensor(data[n], s.shape), true, `one-step-${model}-${n}`)]))
    const one = [[3], [4]]
    const { value, grads } = tf.variableGrads(() => lossTf(forwardTf(m, new TfOps(vars, true), one).logits, [[5], [6]]).loss, Object.values(vars))
    t.ok(Number.isFinite(value.dataSync()[0]), `${model}: a loss`)
    t.equal(Object.keys(grads).length, Object.keys(vars).length, `${model}: a gradient for every weight`)
  }
})
