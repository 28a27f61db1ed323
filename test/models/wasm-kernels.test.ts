// Our WebAssembly SIMD kernels (models/kernels.wat, models/wasm-kernels.ts) against what they replace:
// plain loops for the batched products, TF.js's own kernels for Transpose and Sum, and the TF.js-ops
// versions of AdamW, LayerNorm and GELU (useWasmKernels(false)), values and gradients. Shapes include sizes
// that are not multiples of 4 or 16, so that every tail loop runs.
import t from 'tap'
import * as tf from '@tensorflow/tfjs-core'
import { readFileSync } from 'node:fs'
import { initBackend } from '../../models/backend.ts'
import { TfOps } from '../../models/tf-ops.ts'
import { asBatchedTranspose, batchedMatMul, fusedAdamW, loadWasmKernels, useWasmKernels, wasmKernelsAvailable } from '../../models/wasm-kernels.ts'
import { buildKernels } from '../../models/build-kernels.ts'
import { createRng } from '../../src/infer/rng.ts'

const backend = await initBackend()
const wasmOnly = { skip: backend !== 'wasm' && 'wasm kernels' }
const rng = createRng(5)
const random = (shape: number[]) => tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next() * 2 - 1), shape)
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0)

/** f with our kernels off (TF.js's own kernels and ops), then on: [off, on]. */
function offOn<R>(f: () => R): [R, R] {
  useWasmKernels(false)
  try {
    const off = f()
    useWasmKernels(true)
    return [off, f()]
  } finally {
    useWasmKernels(true)
  }
}

t.test('the committed kernels.wasm files are models/kernels.wat built (npm run build:kernels)', async (t) => {
  const dir = new URL('../../models/', import.meta.url)
  const built = await buildKernels(readFileSync(new URL('kernels.wat', dir), 'utf8'))
  for (const [name, bytes] of Object.entries(built)) t.ok(bytes.equals(readFileSync(new URL(name, dir))), `${name} is up to date`)
})

t.test('on wasm the kernels are in place, and turned off they are not', wasmOnly, async (t) => {
  t.ok(wasmKernelsAvailable())
  t.ok((tf.getKernel('Transpose', 'wasm') as { lmpFast?: boolean }).lmpFast && (tf.getKernel('Sum', 'wasm') as { lmpFast?: boolean }).lmpFast)
  const x = random([3, 8])
  const o = new TfOps({}, true)
  const kernels = async () => (await tf.profile(() => [o.layerNorm(x, tf.ones([8]), tf.zeros([8]), 1e-5), o.gelu(x), o.matMulT(x.reshape([1, 3, 8]), x.reshape([1, 3, 8]))])).kernelNames
  const on = await kernels()
  for (const k of ['LmpLayerNorm', 'LmpGeluArg', 'LmpBatchedMatMul']) t.ok(on.includes(k), `${k} runs`)
  useWasmKernels(false)
  try {
    t.notOk(wasmKernelsAvailable())
    const off = await kernels()
    t.notOk(off.some((k) => k.startsWith('LmpLayerNorm') || k.startsWith('LmpGelu') || k === 'LmpBatchedMatMul'), off.join(' '))
  } finally {
    useWasmKernels(true)
  }
})

t.test("where TF.js's memory is not found, one warning line and TF.js's own kernels", wasmOnly, async (t) => {
  const warnings: string[] = []
  const write = process.stderr.write
  process.stderr.write = ((line: string) => warnings.push(line) > 0) as typeof process.stderr.write
  try {
    const other = { wasm: { asm: {} } } // a TF.js build laid out otherwise
    t.notOk(loadWasmKernels(other))
    t.notOk(loadWasmKernels(other), 'asked again')
  } finally {
    process.stderr.write = write
  }
  t.same(warnings, ["lmp: warning: lmp's wasm kernels: TF.js's wasm memory was not found; training runs on TF.js's own kernels\n"], 'warned once')
  t.ok(loadWasmKernels(tf.backend()), 'the real backend still has them')
})

t.test('batched products with either operand transposed equal plain loops, and so do their gradients', wasmOnly, async (t) => {
  // [batch..., m, k] · [batch..., k, n]: odd sizes (tails of 16, 4 and 1 columns, k mod 4), a 1-entry batch
  for (const [lead, m, k, n] of [[[2, 3], 5, 7, 19], [[1], 17, 4, 33], [[3], 6, 9, 1], [[2], 1, 1, 4]] as [number[], number, number, number][]) {
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
      const a = random([...lead, ...(ta ? [k, m] : [m, k])])
      const b = random([...lead, ...(tb ? [n, k] : [k, n])])
      const av = a.arraySync() as any
      const bv = b.arraySync() as any
      const batch = lead.reduce((x, y) => x * y, 1)
      const entry = (v: any, i: number) => (lead.length === 2 ? v[Math.floor(i / lead[1])][i % lead[1]] : v[i])
      const want: number[] = []
      for (let i = 0; i < batch; i++) {
        const ai = entry(av, i)
        const bi = entry(bv, i)
        for (let r = 0; r < m; r++) for (let c = 0; c < n; c++) {
          let s = 0
          for (let p = 0; p < k; p++) s += (ta ? ai[p][r] : ai[r][p]) * (tb ? bi[c][p] : bi[p][c])
          want.push(s)
        }
      }
      const got = batchedMatMul(a, b, ta, tb)
      t.same(got.shape, [...lead, m, n])
      t.ok(maxDiff(got.dataSync(), want) < 1e-5, `[${lead}] ${m}×${k}×${n}, transposed a ${ta}, b ${tb}`)
      // Gradients of Σ w·(a·b) against tf.matMul's (TF.js's own gradient) with our kernels off.
      const w = random([...lead, m, n])
      const [off, on] = offOn(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, batchedMatMul(x, y, ta, tb))))([a, b]).map((g) => g.dataSync()))
      t.ok(maxDiff(on[0], off[0]) < 1e-5 && maxDiff(on[1], off[1]) < 1e-5, `gradients, transposed a ${ta}, b ${tb}`)
    }
  }
  t.throws(() => batchedMatMul(random([2, 3, 4]), random([2, 5, 6])), /shapes \[2,3,4\] and \[2,5,6\] do not match/)
})

t.test('a permutation that swaps two adjacent groups of axes is one transpose per batch entry', async (t) => {
  t.same(asBatchedTranspose([2, 3, 4, 5], [0, 2, 1, 3]), { batch: 2, rows: 3, cols: 4, inner: 5 })
  t.same(asBatchedTranspose([2, 3, 4, 5], [0, 2, 3, 1]), { batch: 2, rows: 3, cols: 20, inner: 1 })
  t.same(asBatchedTranspose([2, 3, 4, 5], [3, 0, 1, 2]), { batch: 1, rows: 24, cols: 5, inner: 1 })
  t.same(asBatchedTranspose([6, 7], [1, 0]), { batch: 1, rows: 6, cols: 7, inner: 1 })
  t.equal(asBatchedTranspose([2, 3, 4], [0, 1, 2]), null, 'the identity')
  t.equal(asBatchedTranspose([2, 3, 4, 5], [2, 0, 3, 1]), null, 'not two adjacent groups')
  t.equal(asBatchedTranspose([2, 3, 4], [2, 1, 0]), null, 'a reversal of three axes')
})

t.test("Transpose equals TF.js's own kernel for every permutation, float32 and int32", wasmOnly, async (t) => {
  const cases: [number[], number[]][] = [
    [[9, 13], [1, 0]], [[8, 12], [1, 0]], [[3, 5, 7], [0, 2, 1]], [[2, 6, 4, 8], [0, 2, 1, 3]], [[2, 5, 3, 6], [0, 2, 3, 1]],
    [[4, 3, 2], [1, 0, 2]], [[2, 3, 4, 5], [2, 0, 3, 1]], [[3, 4, 5], [2, 1, 0]], [[5, 1, 6], [2, 0, 1]],
  ]
  for (const [shape, perm] of cases) {
    for (const dtype of ['float32', 'int32'] as const) {
      const x = tf.cast(tf.mul(random(shape), 1000), dtype)
      const [off, on] = offOn(() => tf.transpose(x, perm))
      t.same(on.shape, off.shape)
      t.same(Array.from(on.dataSync()), Array.from(off.dataSync()), `[${shape}] by [${perm}], ${dtype}`)
    }
  }
})

t.test("Sum over leading axes equals TF.js's own, and other sums are TF.js's", wasmOnly, async (t) => {
  const x = random([6, 5, 23])
  for (const [axis, keepDims] of [[0, false], [[0, 1], true], [[1, 0], false], [[0, 1, 2], false], [-1, false], [[1, 2], true], [1, false]] as [number | number[], boolean][]) {
    const [off, on] = offOn(() => tf.sum(x, axis, keepDims))
    t.same(on.shape, off.shape)
    t.ok(maxDiff(on.dataSync(), off.dataSync()) < 1e-5, `axis ${JSON.stringify(axis)}, keepDims ${keepDims}`)
  }
})

t.test('AdamW in one kernel gives the same bits as the TF.js ops of models/train.ts', wasmOnly, async (t) => {
  for (const size of [[7], [16, 9]]) {
    const p = random(size)
    const g = random(size)
    const m = tf.mul(random(size), 0.1)
    const v = tf.abs(tf.mul(random(size), 0.01))
    const clip = tf.scalar(0.7)
    const s = { beta1: 0.9, beta2: 0.95, bc1: 1 - 0.9 ** 3, bc2: 1 - 0.95 ** 3, eps: 1e-8, lr: 3e-3, decay: 1 - 3e-3 * 0.1 }
    const [p2, m2, v2] = fusedAdamW(p, g, m, v, clip, s)
    // models/train.ts's reference, operation for operation
    const gi = tf.mul(g, clip)
    const mRef = tf.add(tf.mul(m, s.beta1), tf.mul(gi, 1 - s.beta1))
    const vRef = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(gi), 1 - s.beta2))
    const update = tf.div(tf.div(mRef, s.bc1), tf.add(tf.sqrt(tf.div(vRef, s.bc2)), s.eps))
    const pRef = tf.sub(tf.mul(p, s.decay), tf.mul(update, s.lr))
    t.same(Array.from(m2.dataSync()), Array.from(mRef.dataSync()), `m, [${size}]`)
    t.same(Array.from(v2.dataSync()), Array.from(vRef.dataSync()), `v, [${size}]`)
    t.same(Array.from(p2.dataSync()), Array.from(pRef.dataSync()), `p, [${size}]`)
  }
})

t.test("LayerNorm and GELU in wasm kernels equal models/tf-ops.ts's TF.js ops, values and gradients", wasmOnly, async (t) => {
  for (const shape of [[2, 3, 128], [5, 7], [4, 1]]) {
    const d = shape[shape.length - 1]
    const x = tf.add(tf.mul(random(shape), 3), 0.5)
    const gain = tf.add(random([d]), 1)
    const bias = random([d])
    const w = random(shape)
    const o = new TfOps({}, true)
    const [off, on] = offOn(() => {
      const layerNorm = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(w, o.layerNorm(a, b, c, 1e-5))))([x, gain, bias])
      const gelu = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(w, o.gelu(a))))(x)
      return {
        layerNorm: o.layerNorm(x, gain, bias, 1e-5).dataSync(), layerNormGrads: layerNorm.map((g) => g.dataSync()),
        gelu: o.gelu(x).dataSync(), geluGrad: gelu.dataSync(),
      }
    })
    t.ok(maxDiff(on.layerNorm, off.layerNorm) < 1e-5, `LayerNorm [${shape}]`)
    for (const [i, name] of ['x', 'gain', 'bias'].entries()) {
      const scale = Math.max(1, ...Array.from(off.layerNormGrads[i]).map(Math.abs))
      t.ok(maxDiff(on.layerNormGrads[i], off.layerNormGrads[i]) / scale < 1e-5, `LayerNorm's gradient for ${name}, [${shape}]`)
    }
    t.same(Array.from(on.gelu), Array.from(off.gelu), `GELU [${shape}]: the same bits`)
    t.ok(maxDiff(on.geluGrad, off.geluGrad) < 1e-5, `GELU's gradient [${shape}]`)
  }
})
