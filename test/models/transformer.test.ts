// The Transformer in TF.js: parameter names and shapes (GPT-2's), output shapes, causality, the cache,
// gradients reaching every parameter, option validation, and the loss over [batch, seq, vocab] logits.
import t from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { initBackend } from '../../models/backend.ts'
import { createModel, forwardTf, initWeights, lossTf, MODEL_DEFAULTS, zeroStateTf, type ModelConfig } from '../../models/lm.ts'
import { TfOps } from '../../models/tf-ops.ts'
import { sinusoidTable, type TransformerLM } from '../../models/transformer.ts'
import { createRng } from '../../src/infer/rng.ts'
import { maxAbsDiff } from '../helpers/models.ts'

await initBackend()
const V = 12
const config = (over: Partial<ModelConfig> = {}): ModelConfig =>
  ({ ...MODEL_DEFAULTS, model: 'Transformer', vocabSize: V, dModel: 8, nHead: 2, dFf: 16, nLyr: 2, maxSeqLen: 16, ...over }) as ModelConfig

function build(over: Partial<ModelConfig> = {}) {
  const model = createModel(config(over)) as TransformerLM
  const rng = createRng(5)
  const data = initWeights(model, () => rng.next())
  const specs = model.params()
  const params: Record<string, tf.Tensor> = {}
  for (const [n, s] of Object.entries(specs)) params[n] = tf.tensor(data[n], s.shape)
  return { model, params, specs }
}
const logitsOf = (m: TransformerLM, params: Record<string, tf.Tensor>, ids: number[][]) =>
  tf.tidy(() => (forwardTf(m, new TfOps(params), ids).logits as tf.Tensor).arraySync() as number[][][])

t.test('GPT-2 parameter names and Conv1D [in, out] shapes', async (t) => {
  const { specs } = build()
  t.same(specs['wte.weight'].shape, [V, 8])
  t.same(specs['wpe.weight'].shape, [16, 8])
  t.same(specs['h.1.attn.c_attn.weight'].shape, [8, 24])
  t.same(specs['h.1.attn.c_attn.bias'].shape, [24])
  t.same(specs['h.0.attn.c_proj.weight'].shape, [8, 8])
  t.same(specs['h.0.mlp.c_fc.weight'].shape, [8, 16])
  t.same(specs['h.0.mlp.c_proj.weight'].shape, [16, 8])
  t.same(specs['ln_f.weight'].init, [1, 1], 'LayerNorm gains start at 1')
  t.same(specs['h.0.ln_2.bias'].init, [0, 0], 'LayerNorm biases start at 0')
  t.ok(Object.keys(specs).filter((n) => n.includes('ln')).length === 10, 'every LayerNorm parameter has ln in its name')
  t.notOk('ln_f.weight' in build({ layout: 'post-ln' }).specs, 'post-LN has no final LayerNorm')
  t.notOk('wpe.weight' in build({ positions: 'sinusoidal' }).specs, 'sinusoidal positions are not parameters')
  t.equal(createModel(config({ model: 'Transformer-encoder' })).config.model, 'Transformer', "lmp's name is an alias")
})

t.test('shapes, and causality: a later token never changes earlier logits', async (t) => {
  for (const over of [{}, { layout: 'post-ln' as const, activation: 'relu' as const, positions: 'sinusoidal' as const }]) {
    const { model, params } = build(over)
    const a = [[0, 4, 5, 6, 7, 8], [0, 9, 10, 11, 4, 5]]
    const b = [[0, 4, 5, 11, 11, 11], [0, 9, 10, 11, 4, 6]]
    const la = logitsOf(model, params, a)
    const lb = logitsOf(model, params, b)
    t.same([la.length, la[0].length, la[0][0].length], [2, 6, V], 'logits [batch, seq, vocab]')
    t.ok(maxAbsDiff(la[0].slice(0, 3).flat(), lb[0].slice(0, 3).flat()) === 0, 'row 0: positions before the change are equal')
    t.ok(maxAbsDiff(la[1].slice(0, 5).flat(), lb[1].slice(0, 5).flat()) === 0, 'row 1: positions before the change are equal')
    t.ok(maxAbsDiff(la[0][3], lb[0][3]) > 1e-4, 'the changed position itself differs')
  }
})

t.test('the cache: prefill then one token a call equals the whole sequence', async (t) => {
  const { model, params } = build()
  const ids = [[0, 4, 5, 6, 7, 8, 9]]
  const whole = logitsOf(model, params, ids)[0]
  const o = new TfOps(params)
  let { logits, state } = forwardTf(model, o, [ids[0].slice(0, 3)], zeroStateTf(model, 1))
  t.same(state[0].shape, [1, 2, 3, 4], 'key cache [batch, heads, past, head_dim]')
  for (let s = 3; s < ids[0].length; s++) {
    ;({ logits, state } = forwardTf(model, o, [[ids[0][s]]], state))
    const row = ((logits as tf.Tensor).arraySync() as number[][][])[0][0]
    t.ok(maxAbsDiff(row, whole[s]) <= 1e-5, `position ${s}`)
  }
  t.throws(() => forwardTf(model, o, [Array(17).fill(4)]), /has 16 positions/, 'more tokens than positions is an error')
})

t.test('gradients reach every parameter (dropout on), and the loss equals per-step logits', async (t) => {
  const { model, params } = build({ p: 0.1 })
  const vars: Record<string, tf.Variable> = {}
  for (const [n, p] of Object.entries(params)) vars[n] = tf.variable(p, true, n)
  const ids = [[0, 4, 5, 6, 7, 8], [0, 9, 10, 11, 4, 5]]
  const targets = [[4, 5, 6, 7, 8, 1], [9, 10, 11, 4, 5, -1]] // -1 = IGNORE_INDEX, not counted
  let seed = 1
  const { grads } = tf.variableGrads(() => lossTf(forwardTf(model, new TfOps(vars, true, () => seed++), ids).logits, targets).loss)
  for (const n of Object.keys(vars)) {
    const norm = tf.tidy(() => tf.norm(grads[n]).dataSync()[0])
    t.ok(norm > 0 && Number.isFinite(norm), `${n}: |grad| ${norm.toExponential(2)}`)
  }
  const logits = forwardTf(model, new TfOps(params), ids).logits as tf.Tensor3D
  const one = lossTf(logits, targets, 0.1)
  const perStep = lossTf(tf.unstack(logits, 1) as tf.Tensor2D[], targets, 0.1)
  t.equal(one.count, 11)
  t.equal(perStep.count, 11)
  t.ok(Math.abs(one.loss.dataSync()[0] - perStep.loss.dataSync()[0]) < 1e-5, 'one [batch, seq, vocab] tensor or per-step logits: the same loss')
})

t.test('odd d_model and its sinusoids', async (t) => {
  const pe = sinusoidTable(4, 5)
  t.equal(pe.length, 20)
  t.equal(pe[5 + 0], Math.sin(1))
  t.equal(pe[5 + 1], Math.cos(1))
  t.equal(pe[5 + 4], Math.sin(1 * Math.exp((-4 * Math.log(10000)) / 5)), 'the last (odd) column is a sine')
  const { model, params } = build({ dModel: 9, nHead: 3, positions: 'sinusoidal' })
  t.same(logitsOf(model, params, [[0, 4, 5]])[0].length, 3)
})

t.test('invalid options are one-line errors', async (t) => {
  t.throws(() => createModel(config({ dModel: 10, nHead: 3 })), /multiple of n_head/)
  t.throws(() => createModel(config({ p: 1 })), /p must be in/)
  t.throws(() => createModel(config({ layout: 'sandwich' as any })), /layout must be one of/)
  t.throws(() => createModel(config({ maxSeqLen: 0 })), /maxSeqLen/)
})

t.test('batched matMul (its own wasm kernel) equals tf.matMul, gradients included', async (t) => {
  const o = new TfOps({})
  const a = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 1)
  const b = tf.randomNormal([2, 3, 4, 6], 0, 1, 'float32', 2)
  t.ok(maxAbsDiff(o.matMul(a, b).dataSync(), tf.matMul(a, b).dataSync()) < 1e-5, 'values')
  const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(o.matMul(x, y), tf.range(0, 6)))
  const g = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y), tf.range(0, 6)))
  const [da, db] = tf.grads(f)([a, b])
  const [ea, eb] = tf.grads(g)([a, b])
  t.ok(maxAbsDiff(da.dataSync(), ea.dataSync()) < 1e-5 && maxAbsDiff(db.dataSync(), eb.dataSync()) < 1e-5, 'gradients')
})

t.test("training-mode ops (wasm's cached weight transposes) give the same gradients as plain matMul", async (t) => {
  for (const cfg of [config(), config({ model: 'LSTM-2002', dEmb: 6, nBlk: 3, dBlk: 2, nLyr: 2 })]) {
    const model = createModel(cfg)
    const rng = createRng(9)
    const data = initWeights(model, () => rng.next())
    const vars: Record<string, tf.Variable> = {}
    for (const [n, s] of Object.entries(model.params())) vars[n] = tf.variable(tf.tensor(data[n], s.shape), true, `${cfg.model}/${n}`)
    const ids = [[0, 4, 5, 6, 7], [0, 9, 10, 11, 4]]
    const grads = (training: boolean) => tf.variableGrads(() => lossTf(forwardTf(model, new TfOps(vars, training), ids).logits, ids).loss).grads
    const fast = grads(true)
    const plain = grads(false)
    const worst = Math.max(...Object.values(vars).map((v) => maxAbsDiff(fast[v.name].dataSync(), plain[v.name].dataSync())))
    t.ok(worst < 1e-5, `${cfg.model}: max |Δgrad| ${worst.toExponential(2)}`)
    for (const v of Object.values(vars)) v.dispose()
  }
})
