// Ops that record ONNX nodes instead of computing: running a model's code over OnnxOps traces it into a
// graph with the same weights, names and arithmetic as training (DESIGN.md "written once").
import type { Ops } from '../models/ops.ts'
import type { GraphDef, NodeDef, TensorDef, ValueInfo, AttrValue } from './proto.ts'

export type Weights = Record<string, { shape: number[]; data: Float32Array }>

/** Names are unique across the whole model, subgraphs included (ONNX forbids shadowing). */
class Names {
  private used = new Set<string>()
  fresh(prefix: string): string {
    let name = prefix
    for (let i = 1; this.used.has(name); i++) name = `${prefix}_${i}`
    this.used.add(name)
    return name
  }
  claim(name: string): string {
    if (this.used.has(name)) throw new Error(`duplicate ONNX value name '${name}'`)
    this.used.add(name)
    return name
  }
}

export class GraphBuilder {
  readonly nodes: NodeDef[] = []
  readonly initializers: TensorDef[] = []
  readonly inputs: ValueInfo[] = []
  readonly outputs: ValueInfo[] = []
  private readonly root: GraphBuilder
  private readonly names: Names
  private readonly params = new Map<string, string>()

  constructor(readonly weights: Weights, parent?: GraphBuilder) {
    this.root = parent?.root ?? this
    this.names = parent?.names ?? new Names()
  }

  /** A subgraph (a Scan body): its nodes are its own, weights and constants live in the root graph. */
  subgraph(): GraphBuilder {
    return new GraphBuilder(this.weights, this)
  }

  fresh(prefix: string) { return this.names.fresh(prefix) }

  input(name: string, dtype: ValueInfo['dtype'], shape: (number | string)[]): string {
    this.inputs.push({ name: this.names.claim(name), dtype, shape })
    return name
  }

  /** Expose `value` as graph output `name` (through an Identity node, so any value can be an output). */
  output(value: string, name: string, dtype: ValueInfo['dtype'], shape: (number | string)[]): string {
    this.nodes.push({ op: 'Identity', inputs: [value], outputs: [this.names.claim(name)], name: this.names.fresh(`${name}/Identity`) })
    this.outputs.push({ name, dtype, shape })
    return name
  }

  node(op: string, inputs: string[], attrs?: Record<string, AttrValue>, nOut = 1): string[] {
    const outputs = Array.from({ length: nOut }, () => this.names.fresh(`${op.toLowerCase()}`))
    this.nodes.push({ op, inputs, outputs, name: this.names.fresh(`${op}_node`), attrs })
    return outputs
  }

  /** A trained weight, added to the root graph once. A missing weight is an export error. */
  param(name: string): string {
    const root = this.root
    const known = root.params.get(name)
    if (known) return known
    const w = this.weights[name]
    if (!w) throw new Error(`cannot export: the checkpoint has no weight '${name}'`)
    root.initializers.push({ name: root.names.claim(name), dtype: 'float32', dims: w.shape, data: w.data })
    root.params.set(name, name)
    return name
  }

  constant(dtype: 'float32' | 'int64', values: number[], dims: number[]): string {
    const name = this.names.fresh('const')
    const data = dtype === 'int64' ? BigInt64Array.from(values.map(BigInt)) : Float32Array.from(values)
    this.root.initializers.push({ name, dtype, dims, data })
    return name
  }

  toGraph(name: string): GraphDef {
    return { name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs }
  }
}

export class OnnxOps implements Ops<string> {
  constructor(readonly g: GraphBuilder) {}

  private one(op: string, inputs: string[], attrs?: Record<string, AttrValue>) { return this.g.node(op, inputs, attrs)[0] }
  private ints(values: number[]) { return this.g.constant('int64', values, [values.length]) }
  private scalar(v: number) { return this.g.constant('float32', [v], []) }
  private readonly masks = new Map<string, string>() // causalMask's, by attention mask input

  param(name: string) { return this.g.param(name) }
  constant(values: number[], shape: number[]) { return this.g.constant('float32', values, shape) }
  matMul(a: string, b: string) { return this.one('MatMul', [a, b]) }
  matMulT(a: string, b: string, rank: number) {
    return this.matMul(a, this.transpose(b, [...Array(rank - 2).keys(), rank - 1, rank - 2]))
  }
  add(a: string, b: string) { return this.one('Add', [a, b]) }
  sub(a: string, b: string) { return this.one('Sub', [a, b]) }
  mul(a: string, b: string) { return this.one('Mul', [a, b]) }
  scale(x: string, factor: number) { return this.mul(x, this.scalar(factor)) }
  tanh(x: string) { return this.one('Tanh', [x]) }
  sigmoid(x: string) { return this.one('Sigmoid', [x]) }
  relu(x: string) { return this.one('Relu', [x]) }
  gelu(x: string) {
    // Opset 17 has no Gelu op: the same expression as models/tf-ops.ts, x σ(2√(2/π) (x + 0.044715 x³)),
    // which equals GPT-2's tanh approximation.
    const cube = this.mul(this.mul(x, x), x)
    const z2 = this.mul(this.scalar(2 * Math.sqrt(2 / Math.PI)), this.add(x, this.mul(this.scalar(0.044715), cube)))
    return this.mul(x, this.sigmoid(z2))
  }
  softmax(x: string) { return this.one('Softmax', [x], { axis: { i: -1 } }) }
  causalMask(scores: string, attentionMask: string | null = null) {
    // Every layer's scores have the same shape, so the mask is built once (from the first layer's) and
    // each layer adds it: one node a layer rather than a dozen.
    const key = attentionMask ?? ''
    let mask = this.masks.get(key)
    if (!mask) {
      // From the scores' own shape [..., S, T] (T = past + S): mask[i, j] = -1e9 where j > (T - S) + i.
      const shape = this.one('Shape', [scores])
      const s = this.one('Gather', [shape, this.g.constant('int64', [-2], [])], { axis: { i: 0 } })
      const t = this.one('Gather', [shape, this.g.constant('int64', [-1], [])], { axis: { i: 0 } })
      const zero = this.g.constant('int64', [0], [])
      const one = this.g.constant('int64', [1], [])
      const lastVisible = this.one('Add', [this.one('Range', [zero, s, one]), this.one('Sub', [t, s])]) // [S]
      let hidden = this.one('Greater', [this.one('Range', [zero, t, one]), this.one('Unsqueeze', [lastVisible, this.ints([1])])]) // [S, T]
      if (attentionMask) {
        // Keys whose slot holds no token of the row ([batch, T] → [batch, 1, 1, T] over heads and queries).
        const empty = this.one('Equal', [attentionMask, this.g.constant('int64', [0], [])])
        hidden = this.one('Or', [hidden, this.one('Unsqueeze', [empty, this.ints([1, 2])])])
      }
      mask = this.one('Where', [hidden, this.scalar(-1e9), this.scalar(0)])
      this.masks.set(key, mask)
    }
    return this.add(scores, mask)
  }
  positions(ids: string, past: string | null) {
    const len = (x: string, axis: number) => this.one('Gather', [this.one('Shape', [x]), this.g.constant('int64', [axis], [])], { axis: { i: 0 } })
    const start = past ? len(past, 2) : this.g.constant('int64', [0], [])
    return this.one('Range', [start, this.add(start, len(ids, 1)), this.g.constant('int64', [1], [])])
  }
  layerNorm(x: string, gain: string, bias: string, eps: number) {
    return this.one('LayerNormalization', [x, gain, bias], { axis: { i: -1 }, epsilon: { f: eps } })
  }
  embed(table: string, ids: string) { return this.one('Gather', [table, ids], { axis: { i: 0 } }) }
  dropout(x: string) { return x }
  sliceLast(x: string, start: number, size: number) {
    return this.one('Slice', [x, this.ints([start]), this.ints([start + size]), this.ints([-1])])
  }
  sumLast(x: string) { return this.one('ReduceSum', [x, this.ints([-1])], { keepdims: { i: 1 } }) }
  reshape(x: string, shape: number[]) { return this.one('Reshape', [x, this.ints(shape)]) }
  transpose(x: string, perm: number[]) { return this.one('Transpose', [x], { perm: { ints: perm } }) }
  concat(xs: string[], axis: number) { return this.one('Concat', xs, { axis: { i: axis } }) }
}
