// Moving generations' carried state in and out of a batch (batch on axis 0 of every state entry), for
// the server's shared forward calls. A recurrent state has a fixed shape, so rows simply stack. A
// Transformer's key/value cache grows along its 'past' axis, and rows of different lengths share a call
// by aligning their caches at the end: a shorter one gets zero slots in front, which the graph's
// ATTENTION_MASK masks out of attention and its POSITION_IDS leave out of the positions.
// Browser-safe: no node: imports.
import type { Manifest, State } from './types.ts'

/** Per state entry, the axis that grows with the tokens fed ('past'), or -1 where none does. */
export function pastAxes(manifest: Manifest): number[] {
  return manifest.state.map((s) => s.shape.findIndex((d, i) => i > 0 && typeof d === 'string'))
}

/** A row's own state (batch 1) and how many of its cache's first slots are padding. */
export interface RowState {
  state: State
  padding: number
}

/** One batch from rows of batch 1: caches aligned at the end, the shorter ones padded in front. */
export function stackRows(axes: number[], rows: RowState[]): { state: State; padding: number[] } {
  if (rows.length === 1) return { state: rows[0].state, padding: [rows[0].padding] }
  // Tokens each row holds (the same in every entry that has a past axis).
  const held = rows.map((r) => {
    const i = axes.findIndex((a) => a > 0)
    return i < 0 ? 0 : r.state[i].dims[axes[i]] - r.padding
  })
  const longest = Math.max(...held)
  const padding = held.map((n) => longest - n)
  const state = rows[0].state.map((first, i) => {
    const axis = axes[i]
    if (axis < 0) {
      // Fixed shape: the rows one after another.
      const data = new Float32Array(first.data.length * rows.length)
      rows.forEach((r, b) => data.set(r.state[i].data, b * first.data.length))
      return { data, dims: [rows.length, ...first.dims.slice(1)] }
    }
    const dims = [rows.length, ...first.dims.slice(1)]
    dims[axis] = longest
    const { outer, inner } = around(dims, axis)
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1)) // zeros: the padding
    rows.forEach((r, b) => {
      const src = r.state[i]
      const total = src.dims[axis]
      for (let o = 0; o < outer; o++) {
        const from = (o * total + r.padding) * inner
        data.set(src.data.subarray(from, from + held[b] * inner), ((b * outer + o) * longest + padding[b]) * inner)
      }
    })
    return { data, dims }
  })
  return { state, padding }
}

/** Row `row` of a batch state as a batch-1 state of its own, without its padding. */
export function takeRow(axes: number[], state: State, rows: number, row: number, padding: number): State {
  return state.map((s, i) => {
    const axis = axes[i]
    const size = s.data.length / rows
    if (axis < 0 || padding === 0) {
      return { data: rows === 1 ? s.data : s.data.slice(row * size, (row + 1) * size), dims: [1, ...s.dims.slice(1)] }
    }
    const total = s.dims[axis]
    const dims = [1, ...s.dims.slice(1)]
    dims[axis] = total - padding
    const { outer, inner } = around(dims, axis)
    const data = new Float32Array(outer * dims[axis] * inner)
    for (let o = 0; o < outer; o++) {
      const from = ((row * outer + o) * total + padding) * inner
      data.set(s.data.subarray(from, from + dims[axis] * inner), o * dims[axis] * inner)
    }
    return { data, dims }
  })
}

/**
 * The Transformer graph's ATTENTION_MASK [batch, past+steps] and POSITION_IDS [batch, steps] for rows fed
 * `steps` tokens after a batch cache of `past` slots, of which the first padding[b] hold none of row b's;
 * as `Typed` arrays of `element`s (BigInt64Array and BigInt for onnxruntime, Int32Array and Number for
 * TF.js), filled in place: this runs once a generated token.
 */
export function maskAndPositions<E extends number | bigint, A extends { [i: number]: E; fill(v: E, start?: number, end?: number): A }>(
  past: number, steps: number, padding: number[], Typed: new (length: number) => A, element: (n: number) => E,
): { mask: A; positions: A } {
  const total = past + steps
  const mask = new Typed(padding.length * total).fill(element(1))
  const positions = new Typed(padding.length * steps)
  padding.forEach((pad, b) => {
    mask.fill(element(0), b * total, b * total + pad)
    for (let t = 0; t < steps; t++) positions[b * steps + t] = element(past - pad + t)
  })
  return { mask, positions }
}

/** Elements per batch row before `axis` (outer) and after it (inner). */
function around(dims: number[], axis: number): { outer: number; inner: number } {
  const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1)
  return { outer: prod(dims.slice(1, axis)), inner: prod(dims.slice(axis + 1)) }
}
