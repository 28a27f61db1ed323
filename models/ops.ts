// The small operations interface every architecture is written against (DESIGN.md "written once").
// Two implementations: models/tf-ops.ts computes with TF.js tensors (training, reference forward pass) and
// onnx/trace.ts records ONNX nodes (export). T is a tensor there and a value name here.

export interface Ops<T> {
  /** A trained weight by its checkpoint name (PyTorch-state-dict style, e.g. 'emb.weight'). */
  param(name: string): T
  /** A constant; `dtype` float32 unless given. */
  constant(values: number[], shape: number[]): T
  matMul(a: T, b: T): T // a [..., m, k] × b [k, n] (b 2-D, never transposed: see models/backend.ts)
  add(a: T, b: T): T
  sub(a: T, b: T): T
  mul(a: T, b: T): T
  tanh(x: T): T
  sigmoid(x: T): T
  relu(x: T): T
  gelu(x: T): T // tanh approximation, as GPT-2
  softmax(x: T): T // over the last axis
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
  concat(xs: T[], axis: number): T
}
