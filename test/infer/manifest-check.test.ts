// src/infer/manifest-check.ts through loadOrtModel: the manifest must describe the graph (names, element
// types, ranks and fixed dims, the state pairs, the vocabulary) and match its own checksum; what the
// exporter writes passes in both runtimes (the page runs onnxruntime-web).
import t from 'tap'
import * as ort from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'
import { createModel, initWeights, MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { serialize } from '../../onnx/export.ts'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import { canonicalJson, checkManifestDigest } from '../../src/infer/manifest-check.ts'
import type { Manifest } from '../../src/infer/types.ts'
import { LmpError } from '../../src/errors.ts'

ortWeb.env.wasm.numThreads = 1

function exported(model: string) {
  const m = createModel({ ...MODEL_DEFAULTS, model, vocabSize: 11, dEmb: 4, nBlk: 2, dBlk: 2, dHid: 4, dModel: 8, nHead: 2, dFf: 8, nLyr: 1, maxSeqLen: 16 } as ModelConfig)
  let i = 0
  const init = initWeights(m, () => ((i++ * 7919) % 1000) / 1000)
  const weights = Object.fromEntries(Object.entries(m.params()).map(([n, s]) => [n, { shape: s.shape, data: init[n] }]))
  return serialize(m, weights)
}

/** Loads with `edit` applied to a copy of the manifest; the error message, or null when it loads. */
async function loadEdited(bytes: Uint8Array, manifest: Manifest, edit: (m: any) => void, runtime: unknown = ort): Promise<string | null> {
  const copy = structuredClone(manifest)
  edit(copy)
  try {
    const model = await loadOrtModel(runtime as any, bytes, copy)
    await model.release?.()
    return null
  } catch (e) {
    if (!(e instanceof LmpError)) return `not an LmpError: ${(e as Error).message}`
    return e.message
  }
}

for (const arch of ['LSTM-2000', 'Transformer']) {
  t.test(`${arch}: the exported manifest passes; edited ones are refused in one line`, async (t) => {
    const { bytes, manifest } = exported(arch)
    t.equal(await loadEdited(bytes, manifest, () => {}), null, 'onnxruntime-node')
    t.equal(await loadEdited(bytes, manifest, () => {}, ortWeb), null, 'onnxruntime-web')
    const { manifestSha256: _, ...older } = manifest
    t.equal(await loadEdited(bytes, older as Manifest, () => {}), null, 'a manifest from before the checksum field')
    const [s0] = manifest.state
    const cases: [string, (m: any) => void, RegExp][] = [
      ['a state shape', (m) => (m.state[0].shape = [...s0.shape.slice(0, -1), 64]), new RegExp(`state input '${s0.input.replace(/\./g, '\\.')}' has shape \\[.*64\\] in the manifest, \\[.*\\] in the graph`)],
      ['a state rank', (m) => (m.state[0].shape = ['batch']), /state input .* has shape \[batch\] in the manifest/],
      ['a state pair', (m) => (m.state[0].output = 'logits_x'), /state output 'logits_x' is not an output of the graph/],
      ['an element type', (m) => (m.inputs[0].dtype = 'float32'), /input 'input_ids' is float32 in the manifest, int64 in the graph/],
      ['an extra input', (m) => m.inputs.push({ name: 'extra', dtype: 'float32', shape: ['batch'] }), /the manifest lists input 'extra', which the graph does not have/],
      ['a missing output', (m) => m.outputs.pop(), /the graph has output '.+', which the manifest does not list/],
      ['a fixed dim made symbolic', (m) => (m.outputs[0].shape = ['batch', 'sequence', 'vocab']), /output 'logits' has shape \[batch, sequence, vocab\] in the manifest, \[batch, sequence, 11\] in the graph/],
      ['the vocabulary', (m) => (m.vocabSize = 12), /vocabSize is 12 in the manifest, 11 in the graph's logits/],
      ['the special tokens (checksum)', (m) => (m.specialTokens.eos = 3), /manifest\.json does not match its manifestSha256/],
      ['the model checksum (checksum)', (m) => (m.sha256 = '0'.repeat(64)), /manifest\.json does not match its manifestSha256/],
      ['not a manifest', (m) => (m.inputs = 'input_ids'), /corrupt manifest\.json for model\.onnx: 'inputs' and 'outputs' must list/],
    ]
    for (const [what, edit, message] of cases) {
      const got = await loadEdited(bytes, manifest, edit)
      t.match(got, message, what)
      t.notOk(got?.includes('\n'), `${what}: one line`)
    }
    t.match(await loadEdited(bytes, manifest, cases[0][1], ortWeb), cases[0][2], 'onnxruntime-web refuses too')
  })
}

t.test('the checksum covers the manifest whatever its key order', async (t) => {
  const { manifest } = exported('GRU')
  t.match(manifest.manifestSha256, /^[0-9a-f]{64}$/)
  const reordered = Object.fromEntries(Object.entries(manifest).reverse()) as unknown as Manifest
  await checkManifestDigest(reordered) // does not throw
  t.equal(canonicalJson({ b: [1, { d: 2, c: 'x' }], a: null }), '{"a":null,"b":[1,{"c":"x","d":2}]}')
  await t.rejects(checkManifestDigest({ ...manifest, maxSeqLen: 5 }), /does not match its manifestSha256/)
})
