// Our own WebAssembly SIMD kernels (models/kernels.wat) under TF.js's wasm backend, for the parts of a
// Transformer's training step that TF.js's build does slowly: bench/train-profile.bench.ts measured them.
//   - `LmpBatchedMatMul`: attention's batched products a·b, a·bᵀ and aᵀ·b, operands read in place through
//     strides. TF.js's BatchMatMul runs XNNPACK only for a batch of 1 and a naive loop otherwise, and a
//     transposed operand costs a transposed copy; this kernel needs neither (~25–35 GFLOP/s on one core).
//   - Transpose, for permutations that swap two adjacent groups of axes (a matrix transpose per batch entry,
//     of elements of any size: [B, S, H, Dh] → [B, H, S, Dh] moves rows of Dh floats): 4×4 SIMD blocks or one
//     memory.copy per element. TF.js's kernel moves one float at a time.
//   - Sum over leading axes (a bias's gradient, [rows, cols] → [cols]): TF.js's Sum transposes first.
//   - AdamW's update of a parameter, LayerNorm forward and backward, GELU's gradient: one pass each, where
//     TF.js ops take ~15, ~10 + ~15 and ~12 kernels (each a pass over memory and a JavaScript call).
// The kernels run on TF.js's heap (the memory is imported: shared in its threaded build), on the main
// thread, single-threaded, and give the same numbers as TF.js's to float rounding: test/models/
// wasm-kernels.test.ts holds them equal. Other backends never see them.
import * as tf from '@tensorflow/tfjs-core'
import { readFileSync } from 'node:fs'
import './backend.ts' // registers the wasm backend's kernels, replaced here

interface Kernels {
  gemm(a: number, b: number, c: number, batch: number, m: number, n: number, k: number,
    aBatch: number, aRow: number, aCol: number, bBatch: number, bRow: number, bCol: number,
    cBatch: number, cRow: number, alpha: number): void
  transpose(x: number, y: number, batch: number, rows: number, cols: number, size: number): void
  sum_rows(x: number, y: number, rows: number, cols: number): void
  adamw(p: number, g: number, m: number, v: number, pOut: number, mOut: number, vOut: number, n: number, clip: number,
    beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number, bc1: number, bc2: number,
    eps: number, lr: number, decay: number): void
  layer_norm(x: number, gain: number, bias: number, y: number, mean: number, rstd: number, rows: number, cols: number, eps: number): void
  layer_norm_grad(x: number, gain: number, mean: number, rstd: number, dy: number, dx: number, dgain: number, dbias: number, rows: number, cols: number): void
  gelu_arg(x: number, z: number, n: number, k1: number, k2: number): void
  gelu_grad(x: number, s: number, dy: number, dx: number, n: number, k1: number, k2: number): void
}

let loaded: { wasm: object; kernels: Kernels } | null = null

/** The kernels, instantiated once per wasm backend on its memory (its threaded build shares it). */
function kernelsOf(backend: any): Kernels {
  if (loaded && loaded.wasm === backend.wasm) return loaded.kernels
  const memory: WebAssembly.Memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory
  if (!(memory instanceof WebAssembly.Memory)) throw new Error("lmp's wasm kernels: TF.js's wasm memory was not found")
  const file = memory.buffer instanceof SharedArrayBuffer ? 'kernels.wasm' : 'kernels-unshared.wasm'
  const module = new WebAssembly.Module(readFileSync(new URL(file, import.meta.url)))
  const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels
  loaded = { wasm: backend.wasm, kernels }
  return kernels
}

const failedOn = new WeakSet<object>() // backends' wasm modules the kernels did not load on (warned once)

/**
 * Whether the kernels load on this wasm backend (TF.js's memory found, the module instantiated). If they do
 * not (a TF.js version laid out otherwise), one warning line, and training runs on TF.js's own kernels.
 */
export function loadWasmKernels(backend: object): boolean {
  const wasm = (backend as { wasm?: object }).wasm ?? backend
  if (failedOn.has(wasm)) return false
  try {
    kernelsOf(backend)
    return true
  } catch (err) {
    failedOn.add(wasm)
    process.stderr.write(`lmp: warning: ${(err as Error).message}; training runs on TF.js's own kernels\n`)
    return false
  }
}

const offsetOf = (backend: any, t: tf.TensorInfo): number => backend.dataIdMap.get(t.dataId).memoryOffset
const product = (dims: readonly number[]) => dims.reduce((x, y) => x * y, 1)

const BATCHED = 'LmpBatchedMatMul'
// TF.js's own BatchMatMul, captured before initBackend re-registers it (models/backend.ts).
const wasmMatMul = tf.getKernel('BatchMatMul', 'wasm')
const registered = wasmMatMul !== undefined
let enabled = true

/**
 * Turns these kernels off: TF.js's Transpose and Sum run again, AdamW, LayerNorm and GELU run as TF.js ops
 * (models/train.ts, models/tf-ops.ts), and batched products run as before them (explicit transposes, one XNNPACK product per batch entry).
 * For the tests and the before/after bench (bench/models.bench.ts).
 */
export function useWasmKernels(on: boolean) {
  enabled = on
}

/**
 * Batched product over the last two axes, a [..., m, k] · b [..., k, n] → [..., m, n] with a and b of the
 * same rank and leading dims; `transposeA` reads a as [..., k, m], `transposeB` b as [..., n, k] (PyTorch's
 * a.transpose(-2, -1)). float32. On wasm our `gemm` kernel, elsewhere tf.matMul.
 */
export function batchedMatMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  const plainTf = tf.getBackend() !== 'wasm' || !registered || a.dtype !== 'float32' || b.dtype !== 'float32' || a.size * b.size === 0
  if (plainTf) return tf.matMul(a, b, transposeA, transposeB)
  if (!enabled || !loadWasmKernels(tf.backend())) {
    const plain = (x: tf.Tensor, transposed: boolean) => (transposed ? tf.transpose(x, swapLast(x.rank)) : x)
    return tf.engine().runKernel(PER_ENTRY, { a: plain(a, transposeA), b: plain(b, transposeB) }, {}) as tf.Tensor
  }
  return tf.engine().runKernel(BATCHED, { a, b }, { transposeA, transposeB } as any) as tf.Tensor
}

const swapLast = (rank: number) => [...Array(rank - 2).keys(), rank - 1, rank - 2]

// Batched products before our gemm (useWasmKernels(false)): one plain XNNPACK product per batch entry, each
// entry copied out first, with explicit transposes in the gradient.
const PER_ENTRY = 'LmpPerEntryMatMul'
if (registered && !tf.getKernel(PER_ENTRY, 'wasm')) {
  tf.registerKernel({
    kernelName: PER_ENTRY,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const w = backend as any
      const a = inputs.a as tf.TensorInfo
      const b = inputs.b as tf.TensorInfo
      const r = a.shape.length
      const [m, k] = a.shape.slice(r - 2)
      const n = b.shape[r - 1]
      const out = w.makeOutput([...a.shape.slice(0, r - 2), m, n], 'float32')
      for (let i = 0; i < product(a.shape.slice(0, r - 2)); i++) {
        // A fresh b tensor for every entry: XNNPACK caches its packed weights by the b tensor's id.
        const ai = w.makeOutput([1, m, k], 'float32')
        const bi = w.makeOutput([1, k, n], 'float32')
        // Heap views are taken anew after each allocation: a growing wasm memory detaches old ones.
        w.typedArrayFromHeap(ai).set(w.typedArrayFromHeap(a).subarray(i * m * k, (i + 1) * m * k))
        w.typedArrayFromHeap(bi).set(w.typedArrayFromHeap(b).subarray(i * k * n, (i + 1) * k * n))
        const oi = wasmMatMul!.kernelFunc({ inputs: { a: ai, b: bi }, backend, attrs: { transposeA: false, transposeB: false } }) as tf.TensorInfo
        w.typedArrayFromHeap(out).set(w.typedArrayFromHeap(oi), i * m * n)
        for (const t of [ai, bi, oi]) w.disposeData(t.dataId)
      }
      return out
    },
  })
  tf.registerGradient({
    kernelName: PER_ENTRY,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => ({
      a: () => batchedMatMul(dy as tf.Tensor, tf.transpose(b, swapLast(b.rank))),
      b: () => batchedMatMul(tf.transpose(a, swapLast(a.rank)), dy as tf.Tensor),
    }),
  })
}

if (registered && !tf.getKernel(BATCHED, 'wasm')) {
  tf.registerKernel({
    kernelName: BATCHED,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean }
      let a = inputs.a as tf.TensorInfo
      const b = inputs.b as tf.TensorInfo
      const r = a.shape.length
      const lead = a.shape.slice(0, r - 2)
      const [m, k] = transposeA ? [a.shape[r - 1], a.shape[r - 2]] : [a.shape[r - 2], a.shape[r - 1]]
      const [kb, n] = transposeB ? [b.shape[r - 1], b.shape[r - 2]] : [b.shape[r - 2], b.shape[r - 1]]
      if (r < 2 || b.shape.length !== r || b.shape.slice(0, r - 2).some((d, i) => d !== lead[i]) || kb !== k) {
        throw new Error(`batched matMul: shapes [${a.shape}]${transposeA ? 'ᵀ' : ''} and [${b.shape}]${transposeB ? 'ᵀ' : ''} do not match`)
      }
      const kernels = kernelsOf(backend)
      const out = (backend as any).makeOutput([...lead, m, n], 'float32') as tf.TensorInfo
      const batch = product(lead)
      // Both transposed: the dot-product loop needs a's rows contiguous, so aᵀ is made first.
      let copy: tf.TensorInfo | null = null
      let aTransposed = transposeA
      if (transposeA && transposeB) {
        copy = (backend as any).makeOutput([...lead, m, k], 'float32') as tf.TensorInfo
        kernels.transpose(offsetOf(backend, a), offsetOf(backend, copy), batch, k, m, 4)
        a = copy
        aTransposed = false
      }
      const [aRow, aCol] = aTransposed ? [4, 4 * m] : [4 * k, 4]
      const [bRow, bCol] = transposeB ? [4, 4 * k] : [4 * n, 4]
      kernels.gemm(offsetOf(backend, a), offsetOf(backend, b), offsetOf(backend, out), batch, m, n, k,
        4 * m * k, aRow, aCol, 4 * k * n, bRow, bCol, 4 * m * n, 4 * n, 1)
      if (copy) (backend as any).disposeData(copy.dataId)
      return out
    },
  })
  // TensorFlow's BatchMatMul gradient: each operand's gradient is one more product, transposes as flags.
  tf.registerGradient({
    kernelName: BATCHED,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved
      const g = dy as tf.Tensor
      const { transposeA: tA, transposeB: tB } = attrs as unknown as { transposeA: boolean; transposeB: boolean }
      return {
        a: () => (tA ? batchedMatMul(b, g, tB, true) : batchedMatMul(g, b, false, !tB)),
        b: () => (tB ? batchedMatMul(g, a, true, tA) : batchedMatMul(a, g, !tA, false)),
      }
    },
  })
}

/**
 * `perm` as one matrix transpose per batch entry: [batch, rows, cols, inner] → [batch, cols, rows, inner],
 * when it swaps two adjacent groups of axes and keeps the others in place; null otherwise.
 */
export function asBatchedTranspose(shape: readonly number[], perm: readonly number[]): { batch: number; rows: number; cols: number; inner: number } | null {
  let first = 0
  while (first < perm.length && perm[first] === first) first++
  if (first === perm.length) return null
  let last = perm.length - 1
  while (perm[last] === last) last--
  const split = perm[first] // the group [split, last] comes first, then [first, split)
  for (let i = first; i <= last; i++) {
    const want = i - first <= last - split ? split + (i - first) : first + (i - first - (last - split + 1))
    if (perm[i] !== want) return null
  }
  return {
    batch: product(shape.slice(0, first)),
    rows: product(shape.slice(first, split)),
    cols: product(shape.slice(split, last + 1)),
    inner: product(shape.slice(last + 1)),
  }
}

// Transpose and Sum are replaced in place (their registry entries' kernelFunc), so that code holding the
// entry (models/backend.ts's BatchMatMul) runs the new one too; other cases go to TF.js's own.
const transposeEntry = tf.getKernel('Transpose', 'wasm') as (tf.KernelConfig & { lmpFast?: boolean }) | undefined
if (transposeEntry && !transposeEntry.lmpFast) {
  const original = transposeEntry.kernelFunc
  transposeEntry.kernelFunc = (args) => {
    const x = args.inputs.x as tf.TensorInfo
    const perm = (args.attrs as unknown as { perm: number[] }).perm.map((p) => (p < 0 ? p + x.shape.length : p))
    const plan = x.dtype === 'float32' || x.dtype === 'int32' ? asBatchedTranspose(x.shape, perm) : null
    // Elements of 2 or 3 floats would each be a memory.copy call: TF.js's loop is as good there.
    if (!enabled || !plan || (plan.inner > 1 && plan.inner < 4) || product(x.shape) === 0 || !loadWasmKernels(args.backend)) return original(args)
    const backend = args.backend as any
    const out = backend.makeOutput(perm.map((p) => x.shape[p]), x.dtype) as tf.TensorInfo
    kernelsOf(backend).transpose(offsetOf(backend, x), offsetOf(backend, out), plan.batch, plan.rows, plan.cols, 4 * plan.inner)
    return out
  }
  transposeEntry.lmpFast = true
}

const sumEntry = tf.getKernel('Sum', 'wasm') as (tf.KernelConfig & { lmpFast?: boolean }) | undefined
if (sumEntry && !sumEntry.lmpFast) {
  const original = sumEntry.kernelFunc
  sumEntry.kernelFunc = (args) => {
    const x = args.inputs.x as tf.TensorInfo
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean }
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q)
    const leading = axes.length > 0 && axes.every((p, i) => p === i)
    if (!enabled || !leading || x.dtype !== 'float32' || product(x.shape) === 0 || !loadWasmKernels(args.backend)) return original(args)
    const backend = args.backend as any
    const rest = x.shape.slice(axes.length)
    const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...rest] : rest, 'float32') as tf.TensorInfo
    kernelsOf(backend).sum_rows(offsetOf(backend, x), offsetOf(backend, out), product(x.shape.slice(0, axes.length)), product(rest))
    return out
  }
  sumEntry.lmpFast = true
}

const ADAMW = 'LmpAdamW'

/** The AdamW step's settings for one parameter: bias corrections bc = 1 − β^t, decay = 1 − lr·weight_decay (or 1). */
export interface AdamWStep {
  beta1: number
  beta2: number
  bc1: number
  bc2: number
  eps: number
  lr: number
  decay: number
}

/** Whether fusedAdamW, fusedLayerNorm and fusedGelu run here: on the wasm backend, unless turned off. */
export function wasmKernelsAvailable() {
  return enabled && tf.getBackend() === 'wasm' && registered && loadWasmKernels(tf.backend())
}

/**
 * One AdamW step of a parameter p with gradient g scaled by `clip` (a float32 scalar tensor), moments m and
 * v (all float32, p's shape) → [p', m', v'], new tensors, in one pass over the heap. Loshchilov & Hutter's
 * decoupled decay, PyTorch's torch.optim.AdamW order; models/train.ts writes the same steps as TF.js ops.
 */
export function fusedAdamW(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, clip: tf.Tensor, s: AdamWStep): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.engine().runKernel(ADAMW, { p, g, m, v, clip }, s as any) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor]
}

heapKernel(ADAMW, (k, { p, g, m, v, clip }, s: AdamWStep, make, at) => {
  const [[pOut, pAt], [mOut, mAt], [vOut, vAt]] = [p, m, v].map((t) => make(t.shape))
  k.adamw(at(p), at(g), at(m), at(v), pAt, mAt, vAt, product(p.shape), at(clip),
    s.beta1, 1 - s.beta1, s.beta2, 1 - s.beta2, s.bc1, s.bc2, s.eps, s.lr, s.decay)
  return [pOut, mOut, vOut]
})

/** Registers a wasm kernel computing into new float32 outputs of the given shapes from the inputs' offsets. */
function heapKernel(name: string, run: (k: Kernels, inputs: Record<string, tf.TensorInfo>, attrs: any, make: (shape: number[]) => [tf.TensorInfo, number], at: (t: tf.TensorInfo) => number) => tf.TensorInfo[]) {
  if (!registered || tf.getKernel(name, 'wasm')) return
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const w = backend as any
      const make = (shape: number[]): [tf.TensorInfo, number] => {
        const t = w.makeOutput(shape, 'float32') as tf.TensorInfo
        return [t, offsetOf(w, t)]
      }
      const outs = run(kernelsOf(w), inputs as Record<string, tf.TensorInfo>, attrs, make, (t) => offsetOf(w, t))
      return outs.length === 1 ? outs[0] : outs
    },
  })
}

heapKernel('LmpLayerNorm', (k, { x, gain, bias }, { eps }, make, at) => {
  const cols = x.shape[x.shape.length - 1]
  const rows = product(x.shape) / cols
  const [y, yAt] = make(x.shape)
  const [mean, meanAt] = make([rows])
  const [rstd, rstdAt] = make([rows])
  k.layer_norm(at(x), at(gain), at(bias), yAt, meanAt, rstdAt, rows, cols, eps)
  return [y, mean, rstd]
})
heapKernel('LmpLayerNormGrad', (k, { x, gain, mean, rstd, dy }, _, make, at) => {
  const cols = x.shape[x.shape.length - 1]
  const [dx, dxAt] = make(x.shape)
  const [dgain, dgainAt] = make([cols])
  const [dbias, dbiasAt] = make([cols])
  k.layer_norm_grad(at(x), at(gain), at(mean), at(rstd), at(dy), dxAt, dgainAt, dbiasAt, product(x.shape) / cols, cols)
  return [dx, dgain, dbias]
})

/**
 * LayerNorm over the last axis (Ba et al. 2016; PyTorch's nn.LayerNorm, biased variance): x [..., d], gain
 * and bias [d] → [..., d], one wasm kernel forward and one backward. models/tf-ops.ts's layerNorm writes the
 * same with TF.js ops, the reference. Only where wasmKernelsAvailable() and all are float32.
 */
export function fusedLayerNorm(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc]
    const [y, mean, rstd] = tf.engine().runKernel('LmpLayerNorm', { x: xs, gain: g, bias: b }, { eps } as any) as unknown as tf.Tensor[]
    save([xs, g, mean, rstd])
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [sx, sg, sm, sr]: tf.Tensor[]) =>
        tf.engine().runKernel('LmpLayerNormGrad', { x: sx, gain: sg, mean: sm, rstd: sr, dy }, {}) as unknown as tf.Tensor[],
    }
  })
  return f(x, gain, bias)
}

// GELU's constants, as models/tf-ops.ts's gelu: z = k1·(x + k2·x³), gelu(x) = x·σ(z).
const GELU_K1 = 2 * Math.sqrt(2 / Math.PI)
const GELU_K2 = 0.044715
heapKernel('LmpGeluArg', (k, { x }, _, make, at) => {
  const [z, zAt] = make(x.shape)
  k.gelu_arg(at(x), zAt, product(x.shape), GELU_K1, GELU_K2)
  return [z]
})
heapKernel('LmpGeluGrad', (k, { x, s, dy }, _, make, at) => {
  const [dx, dxAt] = make(x.shape)
  k.gelu_grad(at(x), at(s), at(dy), dxAt, product(x.shape), GELU_K1, GELU_K2)
  return [dx]
})

/**
 * GPT-2's GELU (tanh approximation, Hendrycks & Gimpel 2016) of float32 x, as x·σ(z): z by one wasm kernel,
 * σ by TF.js's vectorized Sigmoid, the product by Multiply (the same bits as models/tf-ops.ts's gelu); the
 * gradient is one wasm kernel. Only where wasmKernelsAvailable().
 */
export function fusedGelu(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, save] = args as [tf.Tensor, tf.GradSaveFunc]
    const s = tf.sigmoid(tf.engine().runKernel('LmpGeluArg', { x: xs }, {}) as tf.Tensor)
    save([xs, s])
    return {
      value: tf.mul(xs, s),
      gradFunc: (dy: tf.Tensor, [sx, ss]: tf.Tensor[]) => tf.engine().runKernel('LmpGeluGrad', { x: sx, s: ss, dy }, {}) as tf.Tensor,
    }
  })
  return f(x)
}
