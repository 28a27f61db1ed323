// One optimizer step: clipping by global L2 norm (PyTorch's clip_grad_norm_) then AdamW (Loshchilov &
// Hutter, "Decoupled Weight Decay Regularization", 2019; PyTorch's torch.optim.AdamW). Written with the
// elementary ops it is ~18 kernels per parameter tensor (~470 for the reference GPT's 26), each a pass over a
// small tensor; on wasm one kernel (plain loops over the heap) does the whole step for every parameter.
// The elementary-ops version stays the reference: test/models/adamw.test.ts holds the two equal.
import * as tf from '@tensorflow/tfjs-core'
import './backend.ts' // registers the wasm backend whose heap the kernel reads

const ADAMW = 'LmpAdamW'

let enabled = true

/** Turns the fused step off (the elementary ops run instead): for the tests and the before/after bench. */
export function useFusedAdamW(on: boolean) {
  enabled = on
}

export interface AdamWOptions {
  lr: number
  beta1: number
  beta2: number
  eps: number
  weightDecay: number
  /** Clip the gradients' global L2 norm to this (0: no clipping). */
  maxNorm: number
  /** The step being taken, counted from 1 (bias corrections 1 − β^step). */
  step: number
  /** Per parameter: whether weight decay applies (train.ts isDecayed). */
  decays: boolean[]
}

/**
 * Updates `params` and their moments `m`, `v` in place (Variable.assign) from `grads` (same order, same
 * shapes): g ← g·min(1, maxNorm / (‖g‖₂ + 1e-6)) over all gradients together; m ← β₁m + (1 − β₁)g;
 * v ← β₂v + (1 − β₂)g²; p ← p·(1 − lr·λ) − lr·(m / (1 − β₁^t)) / (√(v / (1 − β₂^t)) + eps), λ only where decayed.
 */
export function adamwStep(params: tf.Variable[], grads: tf.Tensor[], m: tf.Variable[], v: tf.Variable[], o: AdamWOptions): void {
  const bc1 = 1 - o.beta1 ** o.step
  const bc2 = 1 - o.beta2 ** o.step
  if (enabled && tf.getBackend() === 'wasm' && tf.getKernel(ADAMW, 'wasm') && grads.every((g) => g.dtype === 'float32')) {
    tf.tidy(() => {
      const inputs: Record<string, tf.Tensor> = {}
      params.forEach((p, i) => Object.assign(inputs, { [`p${i}`]: p, [`g${i}`]: grads[i], [`m${i}`]: m[i], [`v${i}`]: v[i] }))
      const out = tf.engine().runKernel(ADAMW, inputs, { ...o, bc1, bc2, n: params.length } as any) as unknown as tf.Tensor[]
      params.forEach((p, i) => {
        p.assign(out[3 * i])
        m[i].assign(out[3 * i + 1])
        v[i].assign(out[3 * i + 2])
      })
    })
    return
  }
  tf.tidy(() => {
    const norm = tf.sqrt(tf.addN(grads.map((x) => tf.sum(tf.square(x)))))
    const scale = o.maxNorm > 0 ? tf.minimum(1, tf.div(o.maxNorm, tf.add(norm, 1e-6))) : tf.scalar(1)
    params.forEach((p, i) => {
      const gi = tf.mul(grads[i], scale)
      m[i].assign(tf.add(tf.mul(m[i], o.beta1), tf.mul(gi, 1 - o.beta1)))
      v[i].assign(tf.add(tf.mul(v[i], o.beta2), tf.mul(tf.square(gi), 1 - o.beta2)))
      const update = tf.div(tf.div(m[i], bc1), tf.add(tf.sqrt(tf.div(v[i], bc2)), o.eps))
      const decayed = o.decays[i] && o.weightDecay > 0 ? tf.mul(p, 1 - o.lr * o.weightDecay) : p
      p.assign(tf.sub(decayed, tf.mul(update, o.lr)))
    })
  })
}

interface Wasm {
  makeOutput(shape: number[], dtype: string): tf.TensorInfo
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array
}

if (tf.getKernel('Softmax', 'wasm') && !tf.getKernel(ADAMW, 'wasm')) {
  // Inputs p{i}, g{i}, m{i}, v{i}; outputs [p', m', v'] per parameter. Arithmetic in double precision,
  // each result rounded once to float32 (the elementary ops round after every op: ~1 ulp apart).
  tf.registerKernel({
    kernelName: ADAMW,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const w = backend as unknown as Wasm
      const o = attrs as unknown as AdamWOptions & { bc1: number; bc2: number; n: number }
      const input = (k: string) => inputs[k] as tf.TensorInfo
      let sq = 0
      for (let i = 0; i < o.n; i++) {
        const g = w.typedArrayFromHeap(input(`g${i}`))
        for (let j = 0; j < g.length; j++) sq += g[j] * g[j]
      }
      const norm = Math.fround(Math.sqrt(sq))
      const scale = o.maxNorm > 0 ? Math.min(1, o.maxNorm / (norm + 1e-6)) : 1
      const outs: tf.TensorInfo[] = []
      for (let i = 0; i < o.n; i++) {
        const shape = input(`p${i}`).shape
        const made = [0, 1, 2].map(() => w.makeOutput(shape, 'float32'))
        outs.push(...made)
        // Views after the allocations: a growing wasm memory detaches older ones.
        const [p, g, m, v] = ['p', 'g', 'm', 'v'].map((k) => w.typedArrayFromHeap(input(`${k}${i}`)))
        const [p2, m2, v2] = made.map((t) => w.typedArrayFromHeap(t))
        const keep = o.decays[i] && o.weightDecay > 0 ? 1 - o.lr * o.weightDecay : 1
        const { beta1, beta2, bc1, bc2, eps, lr } = o
        for (let j = 0; j < p.length; j++) {
          const gj = g[j] * scale
          const mj = beta1 * m[j] + (1 - beta1) * gj
          const vj = beta2 * v[j] + (1 - beta2) * gj * gj
          m2[j] = mj
          v2[j] = vj
          p2[j] = p[j] * keep - lr * ((mj / bc1) / (Math.sqrt(vj / bc2) + eps))
        }
      }
      return outs
    },
  })
}
