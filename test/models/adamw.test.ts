// The fused AdamW step (models/adamw.ts, one wasm kernel for every parameter) against its elementary-ops
// reference: the same parameters and moments after steps with clipping, weight decay on some tensors and
// not others, to float32 rounding.
import t from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { initBackend } from '../../models/backend.ts'
import { adamwStep, useFusedAdamW, type AdamWOptions } from '../../models/adamw.ts'
import { createRng } from '../../src/infer/rng.ts'

const backend = await initBackend()
const shapes = [[5, 7], [7], [3, 4, 2], [1]]

/** Parameters and moments after `steps` steps from the same start, fused or not. */
function run(fused: boolean, o: Omit<AdamWOptions, 'step'>, steps = 3) {
  const rng = createRng(9)
  const fill = (shape: number[], scale: number) => tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rng.next() - 0.5) * scale), shape)
  const p = shapes.map((s) => tf.variable(fill(s, 2)))
  const m = shapes.map((s) => tf.variable(fill(s, 0.1)))
  const v = shapes.map((s) => tf.variable(tf.abs(fill(s, 0.01))))
  useFusedAdamW(fused)
  try {
    for (let step = 1; step <= steps; step++) {
      const grads = shapes.map((s) => fill(s, 3))
      const before = tf.memory().numTensors
      adamwStep(p, grads, m, v, { ...o, step })
      t.equal(tf.memory().numTensors, before, 'no tensor left behind')
      grads.forEach((g) => g.dispose())
    }
    const read = (xs: tf.Variable[]) => xs.flatMap((x) => Array.from(x.dataSync()))
    return { p: read(p), m: read(m), v: read(v) }
  } finally {
    useFusedAdamW(true)
    for (const x of [...p, ...m, ...v]) x.dispose()
  }
}

const relDiff = (a: number[], b: number[]) => a.reduce((d, x, i) => Math.max(d, Math.abs(x - b[i]) / Math.max(1e-6, Math.abs(b[i]))), 0)
const wasmOnly = { skip: backend !== 'wasm' && 'the fused step is a wasm kernel' }

for (const [what, o] of [
  ['clipped (the norm is above max_norm), decay on two tensors', { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxNorm: 1, decays: [true, false, true, false] }],
  ['not clipped (max_norm 0), no decay', { lr: 0.003, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0, maxNorm: 0, decays: [true, true, true, true] }],
  ['max_norm above the norm', { lr: 0.001, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01, maxNorm: 1e3, decays: [false, true, false, true] }],
] as [string, Omit<AdamWOptions, 'step'>][]) {
  t.test(`${what}: the fused step equals the elementary ops`, wasmOnly, async (t) => {
    const fused = run(true, o)
    const plain = run(false, o)
    for (const k of ['p', 'm', 'v'] as const) {
      t.ok(relDiff(fused[k], plain[k]) < 2e-5, `${k} (relative max |Δ| ${relDiff(fused[k], plain[k]).toExponential(1)})`)
    }
    t.not(plain.p.join(), run(false, { ...o, lr: o.lr * 2 }).p.join(), 'the learning rate matters (the check can fail)')
  })
}

t.test('the fused step is one kernel', wasmOnly, async (t) => {
  const p = [tf.variable(tf.ones([4]))]
  const m = [tf.variable(tf.zeros([4]))]
  const v = [tf.variable(tf.zeros([4]))]
  const info = await tf.profile(() => adamwStep(p, [tf.ones([4])], m, v, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1, step: 1, decays: [true] }))
  t.same(info.kernelNames.filter((k) => k !== 'Fill' && k !== 'Identity'), ['LmpAdamW'])
  // First step from zero moments: the update is lr · sign(g) to eps (Adam's known first step).
  t.ok(Array.from(p[0].dataSync()).every((x) => Math.abs(x - 0.9) < 1e-5), 'p = 1 − 0.1')
})
