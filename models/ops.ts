// The small operations interface every architecture is written against (DESIGN.md "written once").
// Two implementations: models/tf-ops.ts computes with TF.js tensors (training, reference forward pass) and
// onnx/trace.ts records ONNX nodes (export). T is a tensor there and a value name here.

export interface Ops<T> {
  /** A trained weight by its checkpoint name (PyTorch-state-dict style, e.g. 'emb.weight'). */
  param(name: string): T
  /** A constant; `dtype` float32 unless given. */
  constant(values: number[], shape: number[]): T
  /**
   * a [..., m, k] × b [k, n] (b 2-D), or a batched product a [..., m, k] × b [..., k, n] (same rank, same
   * leading dims). Never a transposed operand (see models/backend.ts): transpose explicitly first, or use
   * matMulT.
   */
  matMul(a: T, b: T): T
  /**
   * a [..., m, k] × b [..., n, k]ᵀ → [..., m, n], batched over the leading dims of a and b (both of rank
   * `rank`): attention's q·kᵀ. TF.js on wasm reads b in place (models/wasm-kernels.ts); ONNX gets
   * Transpose then MatMul.
   */
  matMulT(a: T, b: T, rank: number): T
  add(a: T, b: T): T
  sub(a: T, b: T): T
  mul(a: T, b: T): T
  /** x times a constant number. */
  scale(x: T, factor: number): T
  tanh(x: T): T
  sigmoid(x: T): T
  relu(x: T): T
  gelu(x: T): T // tanh approximation, as GPT-2
  softmax(x: T): T // over the last axis
  /**
   * Causal additive mask on attention scores [batch, heads, S, P+S] (queries are the last S of P+S
   * positions, P read from the shapes): adds -1e9 where key j lies after query i, that is j > P + i, and,
   * given `attentionMask` (int [batch, P+S]: 1 where a key holds a token, 0 where not), where it is 0.
   */
  causalMask(scores: T, attentionMask?: T | null): T
  /** Integer positions [S] of token ids [batch, S] that follow a cache `past` [batch, heads, P, dh]: P .. P+S-1. */
  positions(ids: T, past: T | null): T
  layerNorm(x: T, gain: T, bias: T, eps: number): T // over the last axis
  /** Rows of `table` [V, d] picked by integer `ids` [...]: the result is [..., d]. */
  embed(table: T, ids: T): T
  /** Inverted dropout while training, identity otherwise (and always in export). */
  dropout(x: T, p: number): T
  /** Elements [start, start+size) of the last axis. */
  sliceLast(x: T, start: number, size: number): T
  /** Sum over the last axis, keeping it as size 1. */
  sumLast(x: T): T
  /** New shape with ONNX Reshape semantics: 0 copies the input's dim at that index, -1 infers one dim. */
  reshape(x: T, shape: number[]): T
  transpose(x: T, perm: number[]): T
  concat(xs: T[], axis: number): T // zero-length inputs (an empty cache) are allowed
  /**
   * Optional fast path: one LSTM step without peepholes (models/lstm-cell.ts), from the input and
   * recurrent projections [B, G] and the cell [B, d], gates per block of dBlk units; null where it cannot
   * run, and the cell is then built from the ops above.
   */
  fusedLstmCell?(x: T, h: T, c: T, forget: boolean, dBlk: number): [T, T] | null
}
