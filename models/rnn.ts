// The recurrent family of lmp, each cell written once over Ops (models/ops.ts):
//   Elman-Net, GRU, LSTM-1997 (no forget gate), LSTM-2000 (forget gate), LSTM-2002 (peepholes).
// Shared structure (lmp):  e = E[x] → tanh(fc_e2h) → n_lyr recurrent layers → tanh(fc_h2e) → z · Eᵀ (tied).
// Weights are stored [in, out] (like GPT-2's Conv1D) so no matMul needs a transposed operand. Each layer
// has one fused input projection fc_x2h [in, G] and one fused recurrent projection fc_h2h [d_hid, G];
// for the LSTMs the G columns are laid out [input gate | forget gate | output gate | cell input], the gates
// per block (n_blk columns each, broadcast over the block's d_blk units), the cell input d_hid columns.
import type { Ops } from './ops.ts'

export const RNN_NAMES = ['Elman-Net', 'GRU', 'LSTM-1997', 'LSTM-2000', 'LSTM-2002'] as const
export type RnnName = (typeof RNN_NAMES)[number]

export interface RnnConfig {
  model: RnnName
  vocabSize: number
  dEmb: number
  dHid: number // Elman-Net and GRU; for the LSTMs it is nBlk × dBlk
  nBlk: number
  dBlk: number
  nLyr: number
  pEmb: number
  pHid: number
  initLower: number
  initUpper: number
  initIb: number // LSTM input-gate bias range [initIb, 0]
  initOb: number // LSTM output-gate bias range [initOb, 0]
  initFb: number // LSTM forget-gate bias range [0, initFb]
}

export interface StateSpec {
  name: string // 'h' or 'c'
  layer: number
  size: number
}

/** A parameter's shape and the uniform range it is initialised from. */
export interface ParamSpec {
  shape: number[]
  init: [number, number]
}

const isLstm = (c: RnnConfig) => c.model.startsWith('LSTM')
const hasForget = (c: RnnConfig) => c.model === 'LSTM-2000' || c.model === 'LSTM-2002'
const hasPeepholes = (c: RnnConfig) => c.model === 'LSTM-2002'

export function hiddenSize(c: RnnConfig) {
  return isLstm(c) ? c.nBlk * c.dBlk : c.dHid
}

/** Columns of the fused projections: see the file comment for their order. */
function gateLayout(c: RnnConfig) {
  const d = hiddenSize(c)
  if (c.model === 'Elman-Net') return { width: d }
  if (c.model === 'GRU') return { width: 3 * d } // update z | reset r | candidate n
  const nGates = hasForget(c) ? 3 : 2
  return { width: nGates * c.nBlk + d, nGates }
}

export class RecurrentLM {
  readonly kind = 'recurrent' as const
  constructor(readonly config: RnnConfig) {}

  get hidden() { return hiddenSize(this.config) }

  params(): Record<string, ParamSpec> {
    const c = this.config
    const d = this.hidden
    const u: [number, number] = [c.initLower, c.initUpper]
    const p: Record<string, ParamSpec> = {
      'emb.weight': { shape: [c.vocabSize, c.dEmb], init: u },
      'fc_e2h.weight': { shape: [c.dEmb, d], init: u },
      'fc_e2h.bias': { shape: [d], init: u },
    }
    const { width } = gateLayout(c)
    for (let l = 0; l < c.nLyr; l++) {
      const pre = `stack_rnn.${l}`
      p[`${pre}.fc_x2h.weight`] = { shape: [d, width], init: u }
      p[`${pre}.fc_h2h.weight`] = { shape: [d, width], init: u }
      if (isLstm(c)) {
        // Bias ranges per gate (lmp), one parameter per gate so each keeps its own init range.
        p[`${pre}.fc_x2ig.bias`] = { shape: [c.nBlk], init: [c.initIb, 0] }
        if (hasForget(c)) p[`${pre}.fc_x2fg.bias`] = { shape: [c.nBlk], init: [0, c.initFb] }
        p[`${pre}.fc_x2og.bias`] = { shape: [c.nBlk], init: [c.initOb, 0] }
        p[`${pre}.fc_x2mc_in.bias`] = { shape: [d], init: u }
      } else {
        p[`${pre}.fc_x2h.bias`] = { shape: [width], init: u }
      }
      if (c.model === 'GRU') p[`${pre}.fc_h2h.bias`] = { shape: [width], init: u }
      if (hasPeepholes(c)) {
        for (const g of ['ig', 'fg', 'og']) p[`${pre}.pc_c2${g}`] = { shape: [c.nBlk, c.dBlk], init: u }
      }
    }
    p['fc_h2e.weight'] = { shape: [d, c.dEmb], init: u }
    p['fc_h2e.bias'] = { shape: [c.dEmb], init: u }
    return p
  }

  /** The carried state, per layer: h (and c for the LSTMs), each [batch, d_hid]. */
  stateSpec(): StateSpec[] {
    const out: StateSpec[] = []
    for (let l = 0; l < this.config.nLyr; l++) {
      out.push({ name: 'h', layer: l, size: this.hidden })
      if (isLstm(this.config)) out.push({ name: 'c', layer: l, size: this.hidden })
    }
    return out
  }

  /** Token ids [...] → layer-0 input [..., d_hid]. */
  embed<T>(o: Ops<T>, ids: T): T {
    const c = this.config
    const e = o.dropout(o.embed(o.param('emb.weight'), ids), c.pEmb)
    return o.dropout(o.tanh(o.add(o.matMul(e, o.param('fc_e2h.weight')), o.param('fc_e2h.bias'))), c.pHid)
  }

  /** The biases of layer l's input projection, in its column order (concatenated when several). */
  inputBiasNames(l: number): string[] {
    const pre = `stack_rnn.${l}`
    if (!isLstm(this.config)) return [`${pre}.fc_x2h.bias`]
    return ['ig', ...(hasForget(this.config) ? ['fg'] : []), 'og', 'mc_in'].map((g) => `${pre}.fc_x2${g}.bias`)
  }

  /** The input-side projection of layer l, for one step [B, d] or a whole sequence [B, S, d]. */
  inputProjection<T>(o: Ops<T>, l: number, x: T): T {
    const biases = this.inputBiasNames(l).map((n) => o.param(n))
    const bias = biases.length === 1 ? biases[0] : o.concat(biases, 0)
    return o.add(o.matMul(x, o.param(`stack_rnn.${l}.fc_x2h.weight`)), bias)
  }

  /** One time step of layer l: projected input xp [B, G] and the layer's state → new state (h first). */
  cell<T>(o: Ops<T>, l: number, xp: T, state: T[]): T[] {
    const c = this.config
    const pre = `stack_rnn.${l}`
    const d = this.hidden
    const h = state[0]
    const hp = o.matMul(h, o.param(`${pre}.fc_h2h.weight`))
    if (c.model === 'Elman-Net') return [o.tanh(o.add(xp, hp))]
    if (c.model === 'GRU') {
      const hpb = o.add(hp, o.param(`${pre}.fc_h2h.bias`))
      const z = o.sigmoid(o.add(o.sliceLast(xp, 0, d), o.sliceLast(hpb, 0, d)))
      const r = o.sigmoid(o.add(o.sliceLast(xp, d, d), o.sliceLast(hpb, d, d)))
      const n = o.tanh(o.add(o.sliceLast(xp, 2 * d, d), o.mul(r, o.sliceLast(hpb, 2 * d, d))))
      // h' = (1 - z) ⊙ n + z ⊙ h  =  n + z ⊙ (h - n)
      return [o.add(n, o.mul(z, o.sub(h, n)))]
    }
    // The LSTMs: gates per block, shaped [B, n_blk, 1] to broadcast over the block's d_blk units. With one
    // unit per block the gates already line up with the units: [B, d_hid] throughout, no reshapes (fewer
    // kernels per step, which is what a small training step on wasm spends its time on).
    if (!hasPeepholes(c)) {
      // Training on wasm: the same cell as one kernel (models/lstm-cell.ts); the ops below stay the reference.
      const fused = o.fusedLstmCell?.(xp, hp, state[1], hasForget(c), c.dBlk)
      if (fused) return fused
    }
    const perUnit = c.dBlk === 1
    const g = o.add(xp, hp)
    const blocks = (x: T) => (perUnit ? x : o.reshape(x, [0, c.nBlk, c.dBlk]))
    const gate = (i: number) => {
      const pre = o.sliceLast(g, i * c.nBlk, c.nBlk)
      return perUnit ? pre : o.reshape(pre, [0, c.nBlk, 1])
    }
    const peep = (name: string, cell: T) => {
      const w = o.param(`${pre}.pc_c2${name}`) // [n_blk, d_blk]
      return perUnit ? o.mul(o.reshape(w, [-1]), cell) : o.sumLast(o.mul(w, cell))
    }
    const cPrev = blocks(state[1])
    const nGates = hasForget(c) ? 3 : 2
    const cellIn = blocks(o.tanh(o.sliceLast(g, nGates * c.nBlk, d)))
    let igPre = gate(0)
    if (hasPeepholes(c)) igPre = o.add(igPre, peep('ig', cPrev))
    const written = o.mul(o.sigmoid(igPre), cellIn)
    let cNext: T
    if (hasForget(c)) {
      let fgPre = gate(1)
      if (hasPeepholes(c)) fgPre = o.add(fgPre, peep('fg', cPrev))
      cNext = o.add(o.mul(o.sigmoid(fgPre), cPrev), written)
    } else {
      cNext = o.add(cPrev, written)
    }
    let ogPre = gate(nGates - 1)
    if (hasPeepholes(c)) ogPre = o.add(ogPre, peep('og', cNext)) // the output gate looks at the new cell
    const hNext = o.mul(o.sigmoid(ogPre), o.tanh(cNext))
    return perUnit ? [hNext, cNext] : [o.reshape(hNext, [0, d]), o.reshape(cNext, [0, d])]
  }

  /** Dropout between layers (lmp's stack_rnn), applied to a layer's output sequence. */
  between<T>(o: Ops<T>, h: T): T {
    return o.dropout(h, this.config.pHid)
  }

  /** Last layer's output [..., d_hid] → logits [..., V] by the transposed embedding (tied). */
  head<T>(o: Ops<T>, h: T): T {
    const z = o.dropout(o.tanh(o.add(o.matMul(h, o.param('fc_h2e.weight')), o.param('fc_h2e.bias'))), this.config.pHid)
    return o.matMul(z, o.transpose(o.param('emb.weight'), [1, 0]))
  }
}
