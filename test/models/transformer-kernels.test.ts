// The Transformer's fused wasm kernels (models/transformer-kernels.ts: LayerNorm, the cross-entropy and
// dense layers with bias) against the elementary ops they replace, which stay the
// reference: loss, logits, attention probabilities and the gradient of every weight, to float32 rounding.
import t, { type Test } from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { initBackend } from '../../models/backend.ts'
import { createModel, initWeights, lossTf, MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { TfOps } from '../../models/tf-ops.ts'
import { useFusedTransformerKernels, type FusedKernel } from '../../models/transformer-kernels.ts'
import type { TransformerLM } from '../../models/transformer.ts'
import { createRng } from '../../src/infer/rng.ts'

const backend = await initBackend()
const V = 13
const ids = [[0, 4, 5, 6, 7, 8, 9], [0, 9, 10, 11, 4, 5, 12], [0, 3, 3, 7, 12, 4, 6]]
const targets = [[4, 5, 6, 7, 8, 9, 1], [9, 10, 11, 4, 5, 12, 2], [3, 3, 7, 12, 4, 6, 2]] // 2 = PAD, not counted

let runs = 0

/** Loss, logits, attention probabilities and every weight's gradient, with the fused kernels given on. */
function run(fused: FusedKernel[] | 'all' | 'none', over: Partial<ModelConfig> = {}, labelSmoothing = 0) {
  const config = { ...MODEL_DEFAULTS, model: 'Transformer', vocabSize: V, dModel: 12, nHead: 3, dFf: 20, nLyr: 2, maxSeqLen: 8, initLower: -0.5, initUpper: 0.5, ...over } as ModelConfig
  const model = createModel(config) as TransformerLM
  const rng = createRng(17)
  const data = initWeights(model, () => rng.next())
  const tag = `fused-${++runs}-`
  const vars: Record<string, tf.Variable> = {}
  for (const [n, s] of Object.entries(model.params())) vars[n] = tf.variable(tf.tensor(data[n], s.shape), true, tag + n)
  useFusedTransformerKernels(fused !== 'none' && fused !== 'all' ? false : fused === 'all')
  if (Array.isArray(fused)) useFusedTransformerKernels(true, fused)
  try {
    let logits: number[] = []
    let probs: number[] = []
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward(new TfOps(vars, true), tf.tensor2d(ids, undefined, 'int32'), null)
      logits = Array.from((out.logits as tf.Tensor).dataSync())
      probs = out.attentions.flatMap((p) => Array.from((p as tf.Tensor).dataSync()))
      return lossTf(out.logits as tf.Tensor3D, targets, labelSmoothing).loss
    }, Object.values(vars))
    const gradients = Object.fromEntries(Object.entries(grads).map(([n, g]) => [n.replace(tag, ''), Array.from(g.dataSync())]))
    return { loss: value.dataSync()[0], logits, probs, gradients }
  } finally {
    useFusedTransformerKernels(true)
    for (const v of Object.values(vars)) v.dispose()
  }
}

const maxDiff = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0)

function same(t: Test, fast: ReturnType<typeof run>, plain: ReturnType<typeof run>) {
  t.ok(Math.abs(fast.loss - plain.loss) < 1e-6, `loss ${fast.loss} vs ${plain.loss}`)
  t.equal(fast.logits.length, plain.logits.length)
  t.ok(maxDiff(fast.logits, plain.logits) < 1e-5, `logits (max |Δ| ${maxDiff(fast.logits, plain.logits).toExponential(1)})`)
  t.equal(fast.probs.length, plain.probs.length)
  t.ok(maxDiff(fast.probs, plain.probs) < 1e-6, 'attention probabilities')
  t.same(Object.keys(fast.gradients).sort(), Object.keys(plain.gradients).sort())
  for (const [name, g] of Object.entries(plain.gradients)) {
    const scale = Math.max(1e-3, ...g.map(Math.abs))
    const diff = maxDiff(fast.gradients[name], g) / scale
    t.ok(diff < 1e-5, `gradient of ${name} (relative max |Δ| ${diff.toExponential(1)})`)
  }
  t.ok(Object.values(plain.gradients).every((g) => g.some((x) => x !== 0)), 'every weight gets a gradient')
}

const wasmOnly = { skip: backend !== 'wasm' && 'the fused kernels are wasm kernels' }

for (const over of [
  { layout: 'pre-ln', activation: 'gelu' },
  { layout: 'post-ln', activation: 'relu', positions: 'sinusoidal' },
] as Partial<ModelConfig>[]) {
  t.test(`${over.layout}, ${over.activation}: all fused kernels equal the elementary ops`, wasmOnly, async (t) => {
    same(t, run('all', over, 0.1), run('none', over, 0.1))
  })
}

for (const kernel of ['layerNorm', 'crossEntropy', 'linear'] as FusedKernel[]) {
  t.test(`${kernel} alone equals the elementary ops`, wasmOnly, async (t) => {
    same(t, run([kernel]), run('none'))
  })
}

t.test('the fused kernels are what runs (one kernel each way, not the elementary ops)', wasmOnly, async (t) => {
  const names = async (fused: boolean) => {
    useFusedTransformerKernels(fused)
    try {
      const info = await tf.profile(() => { run(fused ? 'all' : 'none') })
      return new Set(info.kernelNames)
    } finally {
      useFusedTransformerKernels(true)
    }
  }
  const on = await names(true)
  for (const k of ['LmpLayerNorm', 'LmpLayerNormGrad', 'LmpSoftmaxCrossEntropy', 'LmpSoftmaxCrossEntropyGrad', 'LmpLinear', 'LmpLinearGrad']) {
    t.ok(on.has(k), k)
  }
  const off = await names(false)
  t.notOk([...off].some((k) => k.startsWith('LmpLayerNorm') || k.startsWith('LmpLinear') || k.startsWith('LmpSoftmaxCross')), 'turned off: only elementary ops')
})

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
