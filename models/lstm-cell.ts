// The LSTM cell without peepholes (LSTM-1997 and LSTM-2000) as one wasm kernel and one gradient kernel,
// for training on wasm. Written with the elementary ops, a step of the cell is ~15 kernels forward and ~40
// backward, four of them slices that copy the whole [B, G] gate tensor out of wasm memory (and whose
// gradients pad it back): at batch 32 × 256 units each kernel does microseconds of arithmetic, so the
// cell's time went to kernel overhead. Here a step is one kernel forward and one backward. Inside, the
// exponentials run in wasm's vectorized Sigmoid kernel (JS Math.exp is ~20× slower per element), as
// tanh(v) = 2σ(2v) − 1; plain JS loops over the wasm heap do the rest. Gates are per block of d_blk units
// (models/rnn.ts). The formula is models/rnn.ts's `cell`, which stays the reference:
// test/models/rnn-fast-paths.test.ts holds the two equal, values and gradients.
import * as tf from '@tensorflow/tfjs-core'
import './backend.ts' // registers the wasm kernels this file builds on

const CELL = 'LmpLstmCell'
const CELL_GRAD = 'LmpLstmCellGrad'

let enabled = true

/** Turns the fused cell off (the elementary ops run instead): for the tests and the before/after bench. */
export function useFusedLstmCell(on: boolean) {
  enabled = on
}

/** Whether the fused cell runs here: on the wasm backend (whose heap the kernels read), unless turned off. */
export function fusedLstmCellAvailable() {
  return enabled && tf.getBackend() === 'wasm' && tf.getKernel(CELL, 'wasm') !== undefined
}

/**
 * One step: x and h, the input and recurrent projections [B, G] with G = (forget ? 3 : 2)·n_blk + d laid
 * out [input gate | forget gate | output gate | cell input] (a gate column per block), and the cell c
 * [B, d], d = n_blk·d_blk → [h', c'].
 */
export function fusedLstmCell(x: tf.Tensor, h: tf.Tensor, c: tf.Tensor, forget: boolean, dBlk: number): [tf.Tensor, tf.Tensor] {
  const [hNext, cNext, s, t] = tf.engine().runKernel(CELL, { x, h, c }, { forget, dBlk } as any) as unknown as tf.Tensor[]
  // The activations for the gradient: the engine keeps its own handles when it records the step.
  s.dispose()
  t.dispose()
  return [hNext, cNext]
}

interface Wasm {
  makeOutput(shape: number[], dtype: string): tf.TensorInfo
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array
  disposeData(id: tf.DataId): void
}

function layout(c: tf.TensorInfo, attrs: unknown) {
  const { forget, dBlk } = attrs as { forget: boolean; dBlk: number }
  const [batch, d] = c.shape
  const nBlk = d / dBlk
  const nGates = forget ? 3 : 2
  return { forget, dBlk, batch, d, width: nGates * nBlk + d, fgCol: forget ? nBlk : -1, ogCol: (nGates - 1) * nBlk, inCol: nGates * nBlk }
}

const sigmoidKernel = tf.getKernel('Sigmoid', 'wasm')

if (sigmoidKernel && !tf.getKernel(CELL, 'wasm')) {
  const sigmoid = (backend: Wasm, x: tf.TensorInfo) =>
    sigmoidKernel.kernelFunc({ inputs: { x }, backend: backend as any, attrs: {} }) as tf.TensorInfo

  // Outputs h', c', and for the gradient s = σ of the gate pre-activations (σ(2·) in the cell-input
  // columns) and t = σ(2c'), so that the backward pass needs no exponential.
  tf.registerKernel({
    kernelName: CELL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const w = backend as unknown as Wasm
      const { forget, dBlk, batch, d, width, fgCol, ogCol, inCol } = layout(inputs.c as tf.TensorInfo, attrs)
      const pre = w.makeOutput([batch, width], 'float32')
      {
        const [x, h, p] = [inputs.x as tf.TensorInfo, inputs.h as tf.TensorInfo, pre].map((t) => w.typedArrayFromHeap(t))
        for (let b = 0; b < batch; b++) {
          const row = b * width
          for (let j = row; j < row + inCol; j++) p[j] = x[j] + h[j]
          for (let j = row + inCol; j < row + width; j++) p[j] = 2 * (x[j] + h[j])
        }
      }
      const s = sigmoid(w, pre)
      w.disposeData(pre.dataId)
      const hOut = w.makeOutput([batch, d], 'float32')
      const cOut = w.makeOutput([batch, d], 'float32')
      const c2 = w.makeOutput([batch, d], 'float32')
      {
        // Views after every allocation: a growing wasm memory detaches older ones.
        const [g, c, cNext, twice] = [s, inputs.c as tf.TensorInfo, cOut, c2].map((t) => w.typedArrayFromHeap(t))
        for (let b = 0; b < batch; b++) {
          const row = b * width
          for (let j = 0; j < d; j++) {
            const k = b * d + j
            const blk = (j / dBlk) | 0
            const keep = forget ? g[row + fgCol + blk] : 1
            const cn = keep * c[k] + g[row + blk] * (2 * g[row + inCol + j] - 1)
            cNext[k] = cn
            twice[k] = 2 * cn
          }
        }
      }
      const t = sigmoid(w, c2)
      w.disposeData(c2.dataId)
      {
        const [g, tc, hNext] = [s, t, hOut].map((x) => w.typedArrayFromHeap(x))
        for (let b = 0; b < batch; b++) {
          const row = b * width
          for (let j = 0; j < d; j++) hNext[b * d + j] = g[row + ogCol + ((j / dBlk) | 0)] * (2 * tc[b * d + j] - 1)
        }
      }
      return [hOut, cOut, s, t]
    },
  })

  // dh, dc (for h', c') → dg (for the summed projections x + h) and dc_prev, from the saved activations.
  tf.registerKernel({
    kernelName: CELL_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const w = backend as unknown as Wasm
      const { forget, dBlk, batch, d, width, fgCol, ogCol, inCol } = layout(inputs.c as tf.TensorInfo, attrs)
      const dgOut = w.makeOutput([batch, width], 'float32')
      const dcPrevOut = w.makeOutput([batch, d], 'float32')
      const [g, t, c, dh, dc, dg, dcPrev] = [inputs.s, inputs.t, inputs.c, inputs.dh, inputs.dc, dgOut, dcPrevOut]
        .map((x) => w.typedArrayFromHeap(x as tf.TensorInfo))
      for (let b = 0; b < batch; b++) {
        const row = b * width
        dg.fill(0, row, row + inCol) // gate columns sum over their block's units
        for (let j = 0; j < d; j++) {
          const k = b * d + j
          const blk = (j / dBlk) | 0
          const ig = g[row + blk]
          const og = g[row + ogCol + blk]
          const cellIn = 2 * g[row + inCol + j] - 1
          const tc = 2 * t[k] - 1
          const dcTotal = dc[k] + dh[k] * og * (1 - tc * tc)
          dg[row + ogCol + blk] += dh[k] * tc * og * (1 - og)
          dg[row + blk] += dcTotal * cellIn * ig * (1 - ig)
          dg[row + inCol + j] = dcTotal * ig * (1 - cellIn * cellIn)
          if (forget) {
            const fg = g[row + fgCol + blk]
            dg[row + fgCol + blk] += dcTotal * c[k] * fg * (1 - fg)
            dcPrev[k] = dcTotal * fg
          } else {
            dcPrev[k] = dcTotal
          }
        }
      }
      return [dgOut, dcPrevOut]
    },
  })

  tf.registerGradient({
    kernelName: CELL,
    inputsToSave: ['c'],
    outputsToSave: [false, false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [c, s, t] = saved
      const [dh, dc] = dys as tf.Tensor[]
      const [dg, dcPrev] = tf.engine().runKernel(CELL_GRAD, { s, t, c, dh, dc }, attrs as any) as unknown as tf.Tensor[]
      // x and h enter as a sum, so both get dg; a second handle (wasm Identity shares the data) because
      // the engine disposes each input's gradient on its own.
      return { x: () => dg, h: () => tf.clone(dg), c: () => dcPrev }
    },
  })
}
