// Ops over TF.js tensors: the reference forward pass and, under tf.variableGrads, training.
import * as tf from '@tensorflow/tfjs-core'
import type { Ops } from './ops.ts'
import './backend.ts' // registers the gradients and backends
import { fusedLstmCell, fusedLstmCellAvailable } from './lstm-cell.ts'
import { batchedMatMul, fusedGelu, fusedLayerNorm, wasmKernelsAvailable } from './wasm-kernels.ts'

// Registered before initBackend re-registers BatchMatMul (models/backend.ts): whether the wasm backend is here.
const wasmMatMul = tf.getKernel('BatchMatMul', 'wasm')

// wasm's Identity and Cast copy their input, even to the same dtype; the engine clones (Identity) every
// tensor it saves for a gradient, and Mul's gradient casts float32 to float32: ~300 full copies per
// Transformer training step, 7–13% of its CPU time (bench/models). Tensors are immutable (a Variable's
// assign swaps its data), so these share the data with one more reference instead, as the cpu backend's
// Identity does.
let sharing = true

/** Turns data sharing of wasm's Identity and Cast off (each copies again): for the before/after bench. */
export function useSharedIdentity(on: boolean) {
  sharing = on
}

const sharingKernels = { Identity: tf.getKernel('Identity', 'wasm'), Cast: tf.getKernel('Cast', 'wasm') }
if (sharingKernels.Identity && sharingKernels.Cast && !(sharingKernels.Identity as any).lmpShared) {
  for (const [name, original] of Object.entries(sharingKernels)) {
    const kernelFunc: tf.KernelFunc = (args) => {
      const x = args.inputs.x as tf.TensorInfo
      const dtype = (args.attrs as { dtype?: string } | undefined)?.dtype ?? x.dtype
      if (!sharing || x.dtype === 'string' || dtype !== x.dtype) return original!.kernelFunc(args)
      ;(args.backend as tf.KernelBackend).incRef(x.dataId)
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype }
    }
    tf.unregisterKernel(name, 'wasm')
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc, ...{ lmpShared: true } } as tf.KernelConfig)
  }
}

// wasm's Unpack/Slice copy the whole input out of wasm memory for every piece (unstacking [64, 32, 1024]
// takes ~0.5 s): `LmpUnstack` copies each contiguous block inside the heap instead.
const UNSTACK = 'LmpUnstack'
if (wasmMatMul && !tf.getKernel(UNSTACK, 'wasm')) {
  tf.registerKernel({
    kernelName: UNSTACK,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const w = backend as any
      const x = inputs.x as tf.TensorInfo
      const [n, ...rest] = x.shape
      const size = rest.reduce((a, b) => a * b, 1)
      return Array.from({ length: n }, (_, i) => {
        const out = w.makeOutput(rest, x.dtype)
        w.typedArrayFromHeap(out).set(w.typedArrayFromHeap(x).subarray(i * size, (i + 1) * size))
        return out
      })
    },
  })
  tf.registerGradient({ kernelName: UNSTACK, gradFunc: (dy) => ({ x: () => tf.stack(Array.isArray(dy) ? dy : [dy]) }) })
}

// The gradient of tf.gather (an embedding lookup) is UnsortedSegmentSum, which the wasm backend lacks
// (../shared/MEASURED.md): registered here as a plain loop over the heap, rows of x added into their segment.
if (wasmMatMul && !tf.getKernel('UnsortedSegmentSum', 'wasm')) {
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const w = backend as any
      const x = inputs.x as tf.TensorInfo
      const segmentIds = inputs.segmentIds as tf.TensorInfo
      const { numSegments } = attrs as unknown as { numSegments: number }
      const inner = x.shape.slice(segmentIds.shape.length).reduce((a, b) => a * b, 1)
      const out = w.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype)
      const sums = w.typedArrayFromHeap(out) as Float32Array
      sums.fill(0) // wasm memory is reused: a new output is not zeroed
      const values = w.typedArrayFromHeap(x) as Float32Array
      const ids = w.typedArrayFromHeap(segmentIds) as Int32Array
      for (let i = 0; i < ids.length; i++) {
        const seg = ids[i]
        if (seg < 0 || seg >= numSegments) continue // TensorFlow drops ids out of range
        for (let j = 0, to = seg * inner, from = i * inner; j < inner; j++) sums[to + j] += values[from + j]
      }
      return out
    },
  })
}

// An embedding lookup: rows of a table [V, d] picked by int32 ids. wasm's GatherV2 copies element by
// element (~5 ms for 2,048 rows of 64); `LmpGatherRows` copies each row inside the heap.
const GATHER_ROWS = 'LmpGatherRows'
if (wasmMatMul && !tf.getKernel(GATHER_ROWS, 'wasm')) {
  tf.registerKernel({
    kernelName: GATHER_ROWS,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const w = backend as any
      const table = inputs.table as tf.TensorInfo
      const ids = inputs.ids as tf.TensorInfo
      const [rows, d] = table.shape
      const out = w.makeOutput([...ids.shape, d], 'float32')
      const picked = w.typedArrayFromHeap(out) as Float32Array
      const from = w.typedArrayFromHeap(table) as Float32Array
      const index = w.typedArrayFromHeap(ids) as Int32Array
      for (let i = 0; i < index.length; i++) {
        const row = index[i]
        if (row < 0 || row >= rows) throw new Error(`embedding: id ${row} is outside the table's ${rows} rows`)
        picked.set(from.subarray(row * d, (row + 1) * d), i * d)
      }
      return out
    },
  })
  tf.registerGradient({
    kernelName: GATHER_ROWS,
    inputsToSave: ['table', 'ids'],
    gradFunc: (dy, saved) => {
      const [table, ids] = saved
      const d = table.shape[1]!
      return { table: () => tf.unsortedSegmentSum(tf.reshape(dy as tf.Tensor, [-1, d]), tf.reshape(ids, [-1]) as tf.Tensor1D, table.shape[0]!) }
    },
  })
}

/** tf.stack along a new axis 0, whose gradient is unstackFirst (tf.stack's is the slow Unpack). */
export function stackFirst(xs: tf.Tensor[]): tf.Tensor {
  if (tf.getBackend() !== 'wasm' || !wasmMatMul) return tf.stack(xs)
  const f = tf.customGrad((...args: unknown[]) => {
    const inputs = args.slice(0, xs.length) as tf.Tensor[]
    return { value: tf.stack(inputs), gradFunc: (dy: tf.Tensor) => unstackFirst(dy) }
  })
  return f(...xs)
}

/** x [n, ...] → n tensors [...] (tf.unstack along axis 0, without wasm's whole-input copies). */
export function unstackFirst(x: tf.Tensor): tf.Tensor[] {
  // One piece: a reshape. TF.js hands a one-output kernel's gradient a tensor, not a list, and its own
  // Unpack gradient then fails in tf.stack (a recurrent model at --max-seq-len 1).
  if (x.shape[0] === 1) return [tf.reshape(x, x.shape.slice(1))]
  if (tf.getBackend() !== 'wasm' || !wasmMatMul || x.dtype !== 'float32' || x.shape[0] === 0) return tf.unstack(x)
  return tf.engine().runKernel(UNSTACK, { x }, {}) as unknown as tf.Tensor[]
}

export class TfOps implements Ops<tf.Tensor> {
  /**
   * @param params the model's weights by checkpoint name
   * @param training dropout on
   * @param nextSeed draws a seed for each dropout mask, so a seeded run is reproducible
   */
  constructor(
    readonly params: Record<string, tf.Tensor>,
    readonly training = false,
    readonly nextSeed: () => number = () => 0,
  ) {
    this.weights = new Set(Object.values(params))
  }

  private readonly weights: Set<tf.Tensor>
  /** Each weight's transpose for the backward pass, built once per forward pass; see weightMatMul. */
  private readonly transposed = new Map<tf.Tensor, { t: tf.Tensor; uses: number }>()

  /**
   * a [m, k] × weight [k, n] while training on wasm. The gradient for `a` needs weightᵀ; matMul's own
   * gradient transposes the weight anew at every use, and XNNPACK then re-packs it (it caches packed
   * weights by tensor): for a recurrent weight used at every step that is ~3× the product's cost. Here
   * the transpose is made once, kept for the backward pass, and disposed after its last use there.
   */
  private weightMatMul(a: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
    let entry = this.transposed.get(w)
    if (!entry) {
      entry = { t: tf.keep(tf.transpose(w)), uses: 0 }
      this.transposed.set(w, entry)
    }
    const e = entry
    e.uses++
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x, weight, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc]
      save([x])
      return {
        value: tf.matMul(x as tf.Tensor2D, weight as tf.Tensor2D),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const dx = tf.matMul(dy as tf.Tensor2D, e.t as tf.Tensor2D)
          const dw = tf.matMul(tf.transpose(saved[0]) as tf.Tensor2D, dy as tf.Tensor2D)
          if (--e.uses === 0) {
            e.t.dispose()
            this.transposed.delete(w)
          }
          return [dx, dw]
        },
      }
    })
    return op(a, w) as tf.Tensor2D
  }

  /** Recurrent weights whose gradient is summed once over the sequence; see deferWeightGrad. */
  private readonly deferred = new Map<tf.Tensor, { t: tf.Tensor; pairs: [tf.Tensor, tf.Tensor][]; used: boolean }>()

  /**
   * Marks `w` (a recurrent weight, multiplied at every step) so that its gradient is one product over the
   * whole sequence instead of one small product plus one addition per step: each step's matMul(h, w)
   * records (h, dy) in its backward pass, and the returned identity of `seq` (the step inputs, made before
   * the loop, so its backward runs after every step's) computes dw = [h…]ᵀ · [dy…]. The same sum (to float
   * rounding) with fewer, larger kernels. Only while training on wasm; else returns `seq`.
   */
  deferWeightGrad(seq: tf.Tensor, w: tf.Tensor): tf.Tensor {
    if (!this.training || tf.getBackend() !== 'wasm' || !this.weights.has(w) || this.deferred.has(w)) return seq
    const entry = { t: tf.keep(tf.transpose(w)), pairs: [] as [tf.Tensor, tf.Tensor][], used: false }
    this.deferred.set(w, entry)
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x] = args as [tf.Tensor, tf.Tensor]
      return {
        value: tf.reshape(x, x.shape),
        gradFunc: (dy: tf.Tensor) => {
          const { pairs } = entry
          // In chunks of 16 steps: one product over all 64 steps (inner dimension 2048) ran slower on
          // wasm than the 64 small ones; 16 steps (inner 512 at batch 32) measured ~10% faster per training step.
          const parts: tf.Tensor[] = []
          for (let i = 0; i < pairs.length; i += 16) {
            const chunk = pairs.slice(i, i + 16)
            parts.push(tf.matMul(tf.transpose(tf.concat(chunk.map((p) => p[0]))) as tf.Tensor2D, tf.concat(chunk.map((p) => p[1])) as tf.Tensor2D))
          }
          const dw = parts.length === 0 ? tf.zerosLike(w) : parts.length === 1 ? parts[0] : tf.addN(parts)
          for (const t of [entry.t, ...pairs.flat()]) t.dispose()
          pairs.length = 0
          this.deferred.delete(w)
          return [dy, dw]
        },
      }
    })
    return op(seq, w)
  }

  /**
   * Whether this product with `w` defers its weight gradient: every use but the first. The first step's
   * state may come from outside the graph (a carried TBPTT state), and TF.js's backprop skips a node none
   * of whose inputs depends on a trained variable, so its (h, dy) would never be recorded: that product
   * takes the plain path, whose gradient for w flows as usual.
   */
  private deferredUse(w: tf.Tensor): boolean {
    const entry = this.deferred.get(w)
    if (!entry) return false
    const deferred = entry.used
    entry.used = true
    return deferred
  }

  /** h [m, k] × a deferred recurrent weight: its backward gives dh and records (h, dy) for dw. */
  private deferredMatMul(a: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
    const entry = this.deferred.get(w)!
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x, save] = args as [tf.Tensor, tf.GradSaveFunc]
      save([x])
      return {
        value: tf.matMul(x as tf.Tensor2D, w),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          // Clones share the data (wasm Identity adds a reference); kept until dw is computed.
          entry.pairs.push([tf.keep(tf.clone(saved[0])), tf.keep(tf.clone(dy))])
          return [tf.matMul(dy as tf.Tensor2D, entry.t as tf.Tensor2D)]
        },
      }
    })
    return op(a) as tf.Tensor2D
  }

  param(name: string) {
    const p = this.params[name]
    if (!p) throw new Error(`model has no weight '${name}'`)
    return p
  }
  constant(values: number[], shape: number[]) { return tf.tensor(values, shape, 'float32') }
  matMul(a: tf.Tensor, b: tf.Tensor) {
    if (b.rank === a.rank && a.rank > 2) return batchedMatMul(a, b)
    const plain = (x: tf.Tensor2D) =>
      this.deferredUse(b) ? this.deferredMatMul(x, b as tf.Tensor2D) :
      this.training && this.weights.has(b) && tf.getBackend() === 'wasm' ? this.weightMatMul(x, b as tf.Tensor2D) : tf.matMul(x, b as tf.Tensor2D)
    if (a.rank === 2) return plain(a as tf.Tensor2D)
    const lead = a.shape.slice(0, -1)
    return tf.reshape(plain(tf.reshape(a, [-1, a.shape[a.rank - 1]]) as tf.Tensor2D), [...lead, b.shape[1]!])
  }
  matMulT(a: tf.Tensor, b: tf.Tensor) {
    return a.rank > 2 ? batchedMatMul(a, b, false, true) : tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true)
  }
  fusedLstmCell(x: tf.Tensor, h: tf.Tensor, c: tf.Tensor, forget: boolean, dBlk: number) {
    return fusedLstmCellAvailable() && x.rank === 2 ? fusedLstmCell(x, h, c, forget, dBlk) : null
  }
  add(a: tf.Tensor, b: tf.Tensor) { return tf.add(a, b) }
  sub(a: tf.Tensor, b: tf.Tensor) { return tf.sub(a, b) }
  mul(a: tf.Tensor, b: tf.Tensor) { return tf.mul(a, b) }
  scale(x: tf.Tensor, factor: number) { return tf.mul(x, factor) }
  tanh(x: tf.Tensor) { return tf.tanh(x) }
  sigmoid(x: tf.Tensor) { return tf.sigmoid(x) }
  relu(x: tf.Tensor) { return tf.relu(x) }
  gelu(x: tf.Tensor) {
    if (wasmKernelsAvailable() && x.dtype === 'float32') return fusedGelu(x)
    // GPT-2's tanh approximation 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), written with the identity
    // 0.5 (1 + tanh(z)) = σ(2z): wasm's Sigmoid is vectorized, its Tanh is ~7× slower. x·x·x, not pow.
    // onnx/trace.ts computes the same expression.
    const z2 = tf.mul(2 * Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(tf.mul(x, x), x))))
    return tf.mul(x, tf.sigmoid(z2))
  }
  softmax(x: tf.Tensor) { return tf.softmax(x) }
  causalMask(scores: tf.Tensor, attentionMask: tf.Tensor | null = null) {
    const s = scores.shape[scores.rank - 2]!
    const total = scores.shape[scores.rank - 1]!
    const past = total - s
    const mask = new Float32Array(s * total)
    for (let i = 0; i < s; i++) mask.fill(-1e9, i * total + past + i + 1, (i + 1) * total)
    const masked = tf.add(scores, tf.tensor2d(mask, [s, total]))
    if (!attentionMask) return masked
    return tf.add(masked, tf.where(tf.equal(attentionMask, 0), -1e9, 0).reshape([-1, 1, 1, total]))
  }
  positions(ids: tf.Tensor, past: tf.Tensor | null) {
    const start = past ? past.shape[2]! : 0
    return tf.range(start, start + ids.shape[1]!, 1, 'int32')
  }
  layerNorm(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor, eps: number) {
    if (wasmKernelsAvailable() && x.dtype === 'float32' && gain.rank === 1 && bias.rank === 1) return fusedLayerNorm(x, gain, bias, eps)
    const { mean, variance } = tf.moments(x, -1, true)
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gain), bias)
  }
  embed(table: tf.Tensor, ids: tf.Tensor) {
    const rows = tf.cast(ids, 'int32')
    if (tf.getBackend() === 'wasm' && wasmMatMul && table.rank === 2) return tf.engine().runKernel(GATHER_ROWS, { table, ids: rows }, {}) as tf.Tensor
    return tf.gather(table, rows)
  }
  dropout(x: tf.Tensor, p: number) {
    if (!this.training || p <= 0) return x
    const keep = tf.step(tf.sub(tf.randomUniform(x.shape, 0, 1, 'float32', this.nextSeed()), p))
    return tf.mul(x, tf.mul(keep, 1 / (1 - p)))
  }
  sliceLast(x: tf.Tensor, start: number, size: number) {
    const begin = x.shape.map((_, i) => (i === x.rank - 1 ? start : 0))
    const sizes = x.shape.map((d, i) => (i === x.rank - 1 ? size : d!))
    return tf.slice(x, begin, sizes)
  }
  sumLast(x: tf.Tensor) { return tf.sum(x, -1, true) }
  reshape(x: tf.Tensor, shape: number[]) { return tf.reshape(x, shape.map((d, i) => (d === 0 ? x.shape[i]! : d))) }
  transpose(x: tf.Tensor, perm: number[]) { return tf.transpose(x, perm) }
  concat(xs: tf.Tensor[], axis: number) {
    const nonEmpty = xs.filter((x) => x.size > 0)
    return nonEmpty.length === 1 ? nonEmpty[0] : tf.concat(nonEmpty.length ? nonEmpty : xs, axis)
  }
}
