// Pieces of the Transformer as single wasm kernels, for training on wasm: LayerNorm and the softmax
// cross-entropy (plain JS loops over the wasm heap, as models/lstm-cell.ts does for the LSTM cell), and the
// dense layer x·w + b (wasm's XNNPACK products). Written with the elementary ops, a LayerNorm is ~10 kernels
// forward and ~30 backward, and the gradients of the LayerNorm gain and of every bias sum over the
// batch·steps rows, which wasm's Sum does by transposing the whole tensor first. Measured (bench/models):
// JS loops pay only where they replace several passes; a single elementwise pass (GELU) or strided copies
// (attention's heads) ran slower in JS than wasm's vectorized kernels, so those stay elementary ops.
// The elementary-ops versions (models/tf-ops.ts, models/lm.ts lossTf, models/transformer.ts) stay the
// reference: test/models/transformer-kernels.test.ts holds the two equal, values and gradients.
import * as tf from '@tensorflow/tfjs-core'
import './backend.ts' // registers the wasm backend these kernels read the heap of

const LAYER_NORM = 'LmpLayerNorm'
const LAYER_NORM_GRAD = 'LmpLayerNormGrad'
const CROSS_ENTROPY = 'LmpSoftmaxCrossEntropy'
const CROSS_ENTROPY_GRAD = 'LmpSoftmaxCrossEntropyGrad'

export type FusedKernel = 'layerNorm' | 'crossEntropy' | 'linear'
const enabled: Record<FusedKernel, boolean> = { layerNorm: true, crossEntropy: true, linear: true }

/**
 * Turns fused kernels off or on (off: the elementary ops run instead), all of them or the ones named:
 * for the tests and the before/after bench.
 */
export function useFusedTransformerKernels(on: boolean, which: FusedKernel[] = Object.keys(enabled) as FusedKernel[]) {
  for (const k of which) enabled[k] = on
}

/** Whether a fused kernel runs here: on the wasm backend (whose heap it reads), unless turned off. */
export function fusedTransformerKernelsAvailable(which: FusedKernel) {
  return enabled[which] && tf.getBackend() === 'wasm' && tf.getKernel(LAYER_NORM, 'wasm') !== undefined
}

interface Wasm {
  makeOutput(shape: number[], dtype: string): tf.TensorInfo
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array
  disposeData(id: tf.DataId): void
}

const f32 = (w: Wasm, t: unknown) => w.typedArrayFromHeap(t as tf.TensorInfo) as Float32Array
const lastDim = (t: tf.TensorInfo) => t.shape[t.shape.length - 1]

/**
 * LayerNorm over the last axis (Ba et al. 2016): y = (x − μ) / √(σ² + eps) · gain + bias, σ² the biased
 * variance (as tf.moments and PyTorch). x [..., d], gain and bias [d] → y [..., d].
 */
export function fusedLayerNorm(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  const [y, mean, rstd] = tf.engine().runKernel(LAYER_NORM, { x, gain, bias }, { eps } as any) as unknown as tf.Tensor[]
  // Saved for the gradient: the engine keeps its own handles when it records the op.
  mean.dispose()
  rstd.dispose()
  return y
}

/**
 * Cross-entropy of logits [N, V] against integer targets [N], averaged over the targets that are not
 * `padId`: −Σ_j t_j log softmax(x)_j with t = (1 − ε)·onehot + ε/V (label smoothing ε), as lossTf.
 * Returns the mean as a scalar; its gradient is (softmax(x) − t) / count on the counted rows.
 */
export function fusedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, padId: number, labelSmoothing: number): tf.Scalar {
  const [loss, probs] = tf.engine().runKernel(CROSS_ENTROPY, { logits, targets }, { padId, labelSmoothing } as any) as unknown as tf.Tensor[]
  probs.dispose()
  return loss as tf.Scalar
}

if (!tf.getKernel(LAYER_NORM, 'wasm') && tf.getKernel('Softmax', 'wasm')) {
  // Outputs y, and per row the mean and 1/√(σ² + eps) for the gradient. Sums in double precision.
  tf.registerKernel({
    kernelName: LAYER_NORM,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const w = backend as unknown as Wasm
      const { eps } = attrs as unknown as { eps: number }
      const xi = inputs.x as tf.TensorInfo
      const d = lastDim(xi)
      const rows = d === 0 ? 0 : tf.util.sizeFromShape(xi.shape) / d
      const yOut = w.makeOutput(xi.shape, 'float32')
      const meanOut = w.makeOutput([rows], 'float32')
      const rstdOut = w.makeOutput([rows], 'float32')
      const [x, g, b, y, mean, rstd] = [xi, inputs.gain, inputs.bias, yOut, meanOut, rstdOut].map((t) => f32(w, t))
      for (let r = 0, o = 0; r < rows; r++, o += d) {
        let sum = 0
        for (let j = o; j < o + d; j++) sum += x[j]
        const mu = sum / d
        let sq = 0
        for (let j = o; j < o + d; j++) sq += (x[j] - mu) * (x[j] - mu)
        const rs = 1 / Math.sqrt(sq / d + eps)
        mean[r] = mu
        rstd[r] = rs
        for (let j = 0; j < d; j++) y[o + j] = (x[o + j] - mu) * rs * g[j] + b[j]
      }
      return [yOut, meanOut, rstdOut]
    },
  })

  // dy → dx, dgain, dbias. With x̂ = (x − μ)·r and ĝ = dy·gain: dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),
  // dgain = Σ_rows dy·x̂, dbias = Σ_rows dy.
  tf.registerKernel({
    kernelName: LAYER_NORM_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const w = backend as unknown as Wasm
      const xi = inputs.x as tf.TensorInfo
      const d = lastDim(xi)
      const rows = d === 0 ? 0 : tf.util.sizeFromShape(xi.shape) / d
      const dxOut = w.makeOutput(xi.shape, 'float32')
      const dgOut = w.makeOutput([d], 'float32')
      const dbOut = w.makeOutput([d], 'float32')
      const [x, g, mean, rstd, dy, dx, dgF, dbF] = [xi, inputs.gain, inputs.mean, inputs.rstd, inputs.dy, dxOut, dgOut, dbOut].map((t) => f32(w, t))
      const dg = new Float64Array(d)
      const db = new Float64Array(d)
      for (let r = 0, o = 0; r < rows; r++, o += d) {
        const mu = mean[r]
        const rs = rstd[r]
        let sumG = 0
        let sumGX = 0
        for (let j = 0; j < d; j++) {
          const xh = (x[o + j] - mu) * rs
          const gh = dy[o + j] * g[j]
          sumG += gh
          sumGX += gh * xh
          dg[j] += dy[o + j] * xh
          db[j] += dy[o + j]
        }
        const mG = sumG / d
        const mGX = sumGX / d
        for (let j = 0; j < d; j++) dx[o + j] = rs * (dy[o + j] * g[j] - mG - (x[o + j] - mu) * rs * mGX)
      }
      dgF.set(dg)
      dbF.set(db)
      return [dxOut, dgOut, dbOut]
    },
  })

  tf.registerGradient({
    kernelName: LAYER_NORM,
    inputsToSave: ['x', 'gain'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      const [x, gain, mean, rstd] = saved
      const dy = (dys as tf.Tensor[])[0]
      const [dx, dg, db] = tf.engine().runKernel(LAYER_NORM_GRAD, { x, gain, mean, rstd, dy }, {}) as unknown as tf.Tensor[]
      return { x: () => dx, gain: () => dg, bias: () => db }
    },
  })

  // Outputs the mean loss (scalar) and the softmax [N, V] for the gradient. Per row: max, Σ exp, then
  // log-softmax_j = x_j − max − log Σ exp; sums in double precision.
  tf.registerKernel({
    kernelName: CROSS_ENTROPY,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const w = backend as unknown as Wasm
      const { padId, labelSmoothing: eps } = attrs as unknown as { padId: number; labelSmoothing: number }
      const li = inputs.logits as tf.TensorInfo
      const [rows, V] = li.shape
      const lossOut = w.makeOutput([], 'float32')
      const probsOut = w.makeOutput([rows, V], 'float32')
      const [x, p, loss] = [li, probsOut, lossOut].map((t) => f32(w, t))
      const ids = w.typedArrayFromHeap(inputs.targets as tf.TensorInfo) as Int32Array
      let total = 0
      let count = 0
      for (let r = 0, o = 0; r < rows; r++, o += V) {
        let max = -Infinity
        for (let j = o; j < o + V; j++) if (x[j] > max) max = x[j]
        let z = 0
        let sumX = 0
        for (let j = o; j < o + V; j++) {
          const e = Math.exp(x[j] - max)
          p[j] = e
          z += e
          sumX += x[j]
        }
        const inv = 1 / z
        for (let j = o; j < o + V; j++) p[j] *= inv
        if (ids[r] === padId) continue
        const lse = max + Math.log(z)
        const t = ids[r]
        if (t < 0 || t >= V) throw new Error(`cross-entropy: target ${t} is outside the ${V} classes`)
        // −Σ_j t_j (x_j − lse) with t_j = (1 − ε)[j = target] + ε/V
        total += (1 - eps) * (lse - x[o + t]) + eps * (lse - sumX / V)
        count++
      }
      loss[0] = total / Math.max(count, 1)
      return [lossOut, probsOut]
    },
  })

  // dloss → dlogits = dloss · (softmax − t) / count on counted rows, 0 on PAD rows.
  tf.registerKernel({
    kernelName: CROSS_ENTROPY_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const w = backend as unknown as Wasm
      const { padId, labelSmoothing: eps } = attrs as unknown as { padId: number; labelSmoothing: number }
      const pi = inputs.probs as tf.TensorInfo
      const [rows, V] = pi.shape
      const dxOut = w.makeOutput([rows, V], 'float32')
      const [p, dloss, dx] = [pi, inputs.dloss, dxOut].map((t) => f32(w, t))
      const ids = w.typedArrayFromHeap(inputs.targets as tf.TensorInfo) as Int32Array
      let count = 0
      for (let r = 0; r < rows; r++) if (ids[r] !== padId) count++
      const k = dloss[0] / Math.max(count, 1)
      const smooth = eps / V
      for (let r = 0, o = 0; r < rows; r++, o += V) {
        if (ids[r] === padId) {
          dx.fill(0, o, o + V)
          continue
        }
        for (let j = 0; j < V; j++) dx[o + j] = k * (p[o + j] - smooth)
        dx[o + ids[r]] -= k * (1 - eps)
      }
      return dxOut
    },
  })

  tf.registerGradient({
    kernelName: CROSS_ENTROPY,
    inputsToSave: ['targets'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const [targets, probs] = saved
      const dloss = (dys as tf.Tensor[])[0]
      return {
        logits: () => tf.engine().runKernel(CROSS_ENTROPY_GRAD, { probs, targets, dloss }, attrs as any) as tf.Tensor,
        targets: () => tf.zerosLike(targets),
      }
    },
  })
}

// ---- Dense layers: products in wasm's own XNNPACK matMul. ----

const LINEAR = 'LmpLinear'
const LINEAR_GRAD = 'LmpLinearGrad'

/**
 * x [..., k] · w [k, n] + b [n] → [..., n] (GPT-2's Conv1D). Forward: wasm's fused matMul with bias.
 * Backward: dx = dy·wᵀ, dw = xᵀ·dy with explicit transposes (a transposed operand is slow on wasm), and
 * db = 1ᵀ·dy as a product too: tf.add's gradient sums dy over the leading axes, which wasm does by
 * transposing the whole [batch·steps, n] tensor first.
 */
export function fusedLinear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(LINEAR, { x, w, b }, {}) as tf.Tensor
}

const matMulKernel = tf.getKernel('BatchMatMul', 'wasm')
const fusedMatMulKernel = tf.getKernel('_FusedMatMul', 'wasm')
const transposeKernel = tf.getKernel('Transpose', 'wasm')

if (matMulKernel && fusedMatMulKernel && transposeKernel && !tf.getKernel(LINEAR, 'wasm')) {
  type Backend = any // the kernels' backend argument is untyped ({})
  const view = (t: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({ dataId: t.dataId, shape, dtype: t.dtype })
  /** a [m, k] × b [k, n] (no transposes) → [1, m, n], with XNNPACK. */
  const mm = (backend: Backend, a: tf.TensorInfo, b: tf.TensorInfo) =>
    matMulKernel.kernelFunc({ inputs: { a: view(a, [1, ...a.shape.slice(-2)]), b: view(b, [1, ...b.shape.slice(-2)]) }, backend, attrs: { transposeA: false, transposeB: false } }) as tf.TensorInfo
  const transpose2d = (backend: Backend, x: tf.TensorInfo) => transposeKernel.kernelFunc({ inputs: { x }, backend, attrs: { perm: [1, 0] } }) as tf.TensorInfo

  tf.registerKernel({
    kernelName: LINEAR,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo
      const w = inputs.w as tf.TensorInfo
      const [k, n] = w.shape
      const m = k === 0 ? 0 : tf.util.sizeFromShape(x.shape) / k
      const out = fusedMatMulKernel.kernelFunc({
        inputs: { a: view(x, [1, m, k]), b: view(w, [1, k, n]), bias: inputs.b },
        backend, attrs: { transposeA: false, transposeB: false, activation: 'linear' },
      }) as tf.TensorInfo
      out.shape = [...x.shape.slice(0, -1), n]
      return out
    },
  })

  tf.registerKernel({
    kernelName: LINEAR_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const wb = backend as unknown as Wasm
      const x = inputs.x as tf.TensorInfo
      const w = inputs.w as tf.TensorInfo
      const dy = inputs.dy as tf.TensorInfo
      const [k, n] = w.shape
      const m = k === 0 ? 0 : tf.util.sizeFromShape(x.shape) / k
      const dy2 = view(dy, [m, n])
      const wT = transpose2d(backend, w)
      const dx = mm(backend, dy2, wT)
      const xT = transpose2d(backend, view(x, [m, k]))
      const dw = mm(backend, xT, dy2)
      const ones = wb.makeOutput([1, m], 'float32')
      f32(wb, ones).fill(1)
      const db = mm(backend, ones, dy2)
      for (const t of [wT, xT, ones]) wb.disposeData(t.dataId)
      dx.shape = [...x.shape]
      dw.shape = [k, n]
      db.shape = [n]
      return [dx, dw, db]
    },
  })

  tf.registerGradient({
    kernelName: LINEAR,
    inputsToSave: ['x', 'w'],
    gradFunc: (dy, saved) => {
      const [x, w] = saved
      const [dx, dw, db] = tf.engine().runKernel(LINEAR_GRAD, { x, w, dy: dy as tf.Tensor }, {}) as unknown as tf.Tensor[]
      return { x: () => dx, w: () => dw, b: () => db }
    },
  })
}
