// Where a layer's cell is exactly a standard ONNX op (LSTM-2000 and LSTM-1997 with any block size,
// LSTM-2002 with one unit per block, GRU), the export uses that op instead of a Scan: the fused graph passes
// the same TF.js vs onnxruntime-node vs onnxruntime-web check, gives the Scan export's logits, and keeps the
// Scan export's inputs and outputs.
import t from 'tap'
import * as ort from 'onnxruntime-node'
import { serialize } from '../../onnx/export.ts'
import type { Weights } from '../../onnx/trace.ts'
import { createModel, initWeights, MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { createRng } from '../../src/infer/rng.ts'
import { decodeModel } from '../../onnx/proto.ts'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import { checkRuntimesAgree, logitsBothWays } from '../helpers/consistency.ts'
import { maxAbsDiff, trainTiny } from '../helpers/models.ts'

const cases: [string, string, Record<string, number>][] = [
  ['LSTM-2000, d_blk 1', 'LSTM', { nBlk: 12, dBlk: 1, nLyr: 2 }],
  ['LSTM-2000, d_blk 3', 'LSTM', { nBlk: 4, dBlk: 3, nLyr: 2 }],
  ['LSTM-1997, d_blk 2', 'LSTM', { nBlk: 6, dBlk: 2, nLyr: 2 }],
  ['LSTM-2002, d_blk 1', 'LSTM', { nBlk: 12, dBlk: 1, nLyr: 2 }],
  ['GRU', 'GRU', { dHid: 24, nLyr: 2 }],
]

for (const [name, op, overrides] of cases) {
  t.test(name, async (t) => {
    const trained = await trainTiny(name.split(',')[0], overrides)
    const { bytes, manifest, model, weights, tokenizer } = trained
    const ops = decodeModel(bytes).graph.nodes.map((n) => n.op)
    t.equal(ops.filter((o) => o === op).length, 2, `one ${op} node per layer`)
    t.notOk(ops.includes('Scan'), 'no Scan')

    await checkRuntimesAgree(t, trained)

    const scan = serialize(model, weights, undefined, { fused: false })
    t.ok(decodeModel(scan.bytes).graph.nodes.some((n) => n.op === 'Scan'), 'fused: false keeps the Scan')
    t.same(manifest, { ...scan.manifest, sha256: manifest.sha256, manifestSha256: manifest.manifestSha256 }, 'same manifest: inputs, outputs and state')
    const ids = ['If you add 3 to 41 you get 44 .', 'if you add 5 to'].map((x) => tokenizer.enc(x).slice(0, 12))
    const fused = await logitsBothWays(await loadOrtModel(ort as any, bytes, manifest), ids, 5)
    const scanned = await logitsBothWays(await loadOrtModel(ort as any, scan.bytes, scan.manifest), ids, 5)
    for (const [what, a, b] of [['whole sequence', fused.whole, scanned.whole], ['prefill then steps', fused.stepped, scanned.stepped]] as const) {
      const d = maxAbsDiff(a, b)
      t.ok(d <= 1e-5, `fused vs Scan, ${what}: max |Δlogit| ${d.toExponential(2)} <= 1e-5`)
    }
    fused.state.forEach((s, k) => {
      const d = maxAbsDiff(s.data as Float32Array, scanned.state[k].data as Float32Array)
      t.ok(d <= 1e-5, `fused vs Scan, carried state ${manifest.state[k].output}: max |Δ| ${d.toExponential(2)}`)
    })
  })
}

t.test('every other cell keeps the Scan: LSTM-2002 with d_blk > 1, Elman-Net', async (t) => {
  const rng = createRng(1)
  for (const [arch, dBlk] of [['LSTM-2002', 2], ['Elman-Net', 1]] as const) {
    const model = createModel({ ...MODEL_DEFAULTS, model: arch, vocabSize: 20, dEmb: 8, dHid: 8, nBlk: 4, dBlk, nLyr: 2 } as ModelConfig)
    const data = initWeights(model, () => rng.next())
    const weights: Weights = Object.fromEntries(Object.entries(model.params()).map(([k, spec]) => [k, { shape: spec.shape, data: data[k] }]))
    const ops = decodeModel(serialize(model, weights).bytes).graph.nodes.map((n) => n.op)
    t.ok(ops.filter((o) => o === 'Scan').length === 2 && !ops.includes('LSTM') && !ops.includes('GRU'), `${arch}, d_blk ${dBlk}: two Scans, no fused op`)
  }
})

t.test('a weight missing from a fused export is named', async (t) => {
  const model = createModel({ ...MODEL_DEFAULTS, model: 'GRU', vocabSize: 20, dEmb: 8, dHid: 8, nLyr: 1 } as ModelConfig)
  const rng = createRng(2)
  const data = initWeights(model, () => rng.next())
  const weights: Weights = Object.fromEntries(Object.entries(model.params()).map(([k, spec]) => [k, { shape: spec.shape, data: data[k] }]))
  delete weights['stack_rnn.0.fc_h2h.bias']
  t.throws(() => serialize(model, weights), /no weight 'stack_rnn.0.fc_h2h.bias'/)
})

// Layer 0's input from a table over the vocabulary (V <= d_hid): folded into the fused op's W behind a
// one-hot token, or one Gather before a Scan. The same TF.js vs onnxruntime-node vs onnxruntime-web check,
// and the same logits as the graph that computes it per position.
const tableCases: [string, 'OneHot' | 'Gather', Record<string, number>][] = [
  ['LSTM-2000', 'OneHot', { nBlk: 16, dBlk: 2 }],
  ['GRU', 'OneHot', { dHid: 32 }],
  ['Elman-Net', 'Gather', { dHid: 32 }],
  ['LSTM-2002', 'Gather', { nBlk: 16, dBlk: 2 }],
]
for (const [arch, how, overrides] of tableCases) {
  t.test(`${arch}: layer 0 read from a vocabulary table (${how === 'OneHot' ? 'folded into the op' : 'before the Scan'})`, async (t) => {
    const trained = await trainTiny(arch, { ...overrides, nLyr: 2 })
    const { bytes, manifest, model, weights, tokenizer } = trained
    const graph = decodeModel(bytes).graph
    const names = new Set(graph.initializers.map((i) => i.name))
    t.ok(manifest.vocabSize <= 32, `V ${manifest.vocabSize} <= d_hid 32`)
    t.notOk(names.has('fc_e2h.weight'), 'fc_e2h is folded into the table')
    t.ok(names.has('emb.weight'), 'the embedding stays (the tied head reads it)')
    if (how === 'OneHot') t.ok(graph.nodes.some((n) => n.op === 'OneHot'), 'a one-hot token feeds the op')
    else t.ok(names.has('stack_rnn.0.token_projection'), 'a table of layer 0 projections')

    await checkRuntimesAgree(t, trained)

    const perPosition = serialize(model, weights, undefined, { vocabularyTable: false })
    t.ok(decodeModel(perPosition.bytes).graph.initializers.some((i) => i.name === 'fc_e2h.weight'), 'vocabularyTable: false computes it per position')
    const ids = ['If you add 3 to 41 you get 44 .', 'if you add 5 to'].map((x) => tokenizer.enc(x).slice(0, 12))
    const table = await logitsBothWays(await loadOrtModel(ort as any, bytes, manifest), ids, 5)
    const plain = await logitsBothWays(await loadOrtModel(ort as any, perPosition.bytes, perPosition.manifest), ids, 5)
    for (const [what, a, b] of [['whole sequence', table.whole, plain.whole], ['prefill then steps', table.stepped, plain.stepped]] as const) {
      const d = maxAbsDiff(a, b)
      t.ok(d <= 1e-5, `table vs per position, ${what}: max |Δlogit| ${d.toExponential(2)} <= 1e-5`)
    }
  })
}

t.test('a vocabulary larger than the hidden size keeps the per-position graph', async (t) => {
  const rng = createRng(4)
  const model = createModel({ ...MODEL_DEFAULTS, model: 'LSTM-2000', vocabSize: 40, dEmb: 8, nBlk: 8, dBlk: 2, nLyr: 1 } as ModelConfig)
  const data = initWeights(model, () => rng.next())
  const weights: Weights = Object.fromEntries(Object.entries(model.params()).map(([k, spec]) => [k, { shape: spec.shape, data: data[k] }]))
  const graph = decodeModel(serialize(model, weights).bytes).graph
  t.ok(graph.initializers.some((i) => i.name === 'fc_e2h.weight') && !graph.nodes.some((n) => n.op === 'OneHot'), 'V 40 > d_hid 16')
})
