// The consistency checks can fail: an export with the LSTM gates in the wrong order, with a weight
// changed or missing, or with a wrong LayerNorm epsilon (a change too small for 1e-4) does not pass them.
import t from 'tap'
import * as ort from 'onnxruntime-node'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import { tfStepModel } from '../../models/tf-step-model.ts'
import { serialize } from '../../onnx/export.ts'
import { decodeModel, encodeModel } from '../../onnx/proto.ts'
import { TOL } from '../helpers/consistency.ts'
import type { Weights } from '../../onnx/trace.ts'
import { maxAbsDiff, trainTiny } from '../helpers/models.ts'

const trained = await trainTiny('LSTM-2000', { nLyr: 2, nBlk: 6, dBlk: 4 })
const { tokenizer, manifest, model } = trained
const ids = [tokenizer.enc('If you add 12 to 30 you get 42 .')]
const tfState = tfStepModel(model, trained.weights, manifest).initState(1)
const ref = (await tfStepModel(model, trained.weights, manifest).forward(ids, tfState)).logits

async function ortLogits(weights: Weights) {
  const { bytes, manifest } = serialize(model, weights)
  const m = await loadOrtModel(ort as any, bytes, manifest)
  return (await m.forward(ids, m.initState(1))).logits
}

/** Swap column blocks [a, a+n) and [b, b+n) of a [rows, cols] weight (or of a vector when rows = 1). */
function swapColumns(w: { shape: number[]; data: Float32Array }, a: number, b: number, n: number) {
  const cols = w.shape[w.shape.length - 1]
  const data = w.data.slice()
  for (let r = 0; r < data.length / cols; r++) {
    for (let k = 0; k < n; k++) {
      data[r * cols + a + k] = w.data[r * cols + b + k]
      data[r * cols + b + k] = w.data[r * cols + a + k]
    }
  }
  return { shape: w.shape, data }
}

t.ok(maxAbsDiff(ref, await ortLogits(trained.weights)) <= TOL, 'the faithful export matches TF.js')

t.test('input and forget gates swapped in the export', async (t) => {
  const nBlk = 6
  const w: Weights = { ...trained.weights }
  for (const l of [0, 1]) {
    // Columns are [ig | fg | og | cell input]; the biases are separate per gate.
    w[`stack_rnn.${l}.fc_x2h.weight`] = swapColumns(w[`stack_rnn.${l}.fc_x2h.weight`], 0, nBlk, nBlk)
    w[`stack_rnn.${l}.fc_h2h.weight`] = swapColumns(w[`stack_rnn.${l}.fc_h2h.weight`], 0, nBlk, nBlk)
    ;[w[`stack_rnn.${l}.fc_x2ig.bias`], w[`stack_rnn.${l}.fc_x2fg.bias`]] = [w[`stack_rnn.${l}.fc_x2fg.bias`], w[`stack_rnn.${l}.fc_x2ig.bias`]]
  }
  const d = maxAbsDiff(ref, await ortLogits(w))
  t.ok(d > TOL, `logits differ by ${d.toExponential(2)}, so the consistency test would fail`)
})

t.test('a weight changed in the export', async (t) => {
  const w: Weights = { ...trained.weights, 'stack_rnn.1.fc_x2fg.bias': { shape: [6], data: new Float32Array(6) } }
  const d = maxAbsDiff(ref, await ortLogits(w))
  t.ok(d > TOL, `logits differ by ${d.toExponential(2)}`)
})

t.test('a weight missing from the export', async (t) => {
  const w: Weights = { ...trained.weights }
  delete w['stack_rnn.1.fc_h2h.weight']
  t.throws(() => serialize(model, w), /no weight 'stack_rnn.1.fc_h2h.weight'/)
})

// LayerNorm's epsilon 1e-12 (BERT's) for 1e-5 (GPT-2's and lmp's) moves a trained post-LN Transformer's
// logits by 1e-5 to 1e-4: a real export bug that a 1e-4 tolerance lets through.
t.test('a wrong LayerNorm epsilon in a post-LN Transformer export', async (t) => {
  const tr = await trainTiny('Transformer', { dModel: 16, nHead: 2, dFf: 32, p: 0.1, maxSeqLen: 64, layout: 'post-ln', positions: 'sinusoidal' })
  const x = [tr.tokenizer.enc('If you add 12 to 30 you get 42 .')]
  const tfm = tfStepModel(tr.model, tr.weights, tr.manifest)
  const want = (await tfm.forward(x, tfm.initState(1))).logits
  const logits = async (bytes: Uint8Array) => {
    const m = await loadOrtModel(ort as any, bytes, tr.manifest)
    return (await m.forward(x, m.initState(1))).logits
  }
  t.ok(maxAbsDiff(want, await logits(tr.bytes)) <= TOL, 'the faithful export matches TF.js')
  const graph = decodeModel(tr.bytes)
  const norms = graph.graph.nodes.filter((n) => n.op === 'LayerNormalization')
  t.ok(norms.length > 0, `${norms.length} LayerNormalization nodes`)
  for (const n of norms) n.attrs = { ...n.attrs, epsilon: { f: 1e-12 } }
  const d = maxAbsDiff(want, await logits(encodeModel(graph)))
  t.ok(d > TOL, `logits differ by ${d.toExponential(2)}, so the consistency test would fail`)
})
