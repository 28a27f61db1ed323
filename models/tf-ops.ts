// Ops over TF.js tensors: the reference forward pass and, under tf.variableGrads, training.
import * as tf from '@tensorflow/tfjs-core'
import type { Ops } from './ops.ts'
import './backend.ts' // registers the gradients and backends

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
  ) {}

  param(name: string) {
    const p = this.params[name]
    if (!p) throw new Error(`model has no weight '${name}'`)
    return p
  }
  constant(values: number[], shape: number[]) { return tf.tensor(values, shape, 'float32') }
  matMul(a: tf.Tensor, b: tf.Tensor) {
    if (a.rank === 2) return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)
    const lead = a.shape.slice(0, -1)
    const flat = tf.matMul(tf.reshape(a, [-1, a.shape[a.rank - 1]]) as tf.Tensor2D, b as tf.Tensor2D)
    return tf.reshape(flat, [...lead, b.shape[1]!])
  }
  add(a: tf.Tensor, b: tf.Tensor) { return tf.add(a, b) }
  sub(a: tf.Tensor, b: tf.Tensor) { return tf.sub(a, b) }
  mul(a: tf.Tensor, b: tf.Tensor) { return tf.mul(a, b) }
  tanh(x: tf.Tensor) { return tf.tanh(x) }
  sigmoid(x: tf.Tensor) { return tf.sigmoid(x) }
  relu(x: tf.Tensor) { return tf.relu(x) }
  gelu(x: tf.Tensor) {
    // 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)))
  }
  softmax(x: tf.Tensor) { return tf.softmax(x) }
  layerNorm(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor, eps: number) {
    const { mean, variance } = tf.moments(x, -1, true)
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gain), bias)
  }
  embed(table: tf.Tensor, ids: tf.Tensor) {
    // One-hot × table rather than gather: gather's gradient needs UnsortedSegmentSum, which the wasm
    // backend lacks. Cheap at the small vocabularies this trains.
    const oneHot = tf.cast(tf.oneHot(tf.reshape(ids, [-1]) as tf.Tensor1D, table.shape[0]), 'float32')
    return tf.reshape(tf.matMul(oneHot as tf.Tensor2D, table as tf.Tensor2D), [...ids.shape, table.shape[1]!])
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
  concat(xs: tf.Tensor[], axis: number) { return tf.concat(xs, axis) }
}
