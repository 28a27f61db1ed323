// Transformer rows whose key/value caches hold different numbers of tokens share one call, their caches
// aligned at the end (src/infer/batch.ts), the slots in front masked by the graph's attention_mask and its
// position_ids counting each row's own tokens:
// every row's logits and cache equal those of its own call, in TF.js, onnxruntime-node and onnxruntime-web.
// This is what lets the server batch a request that joins while others are decoding.
import t from 'tap'
import * as ort from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import { pastAxes, stackRows, takeRow } from '../../src/infer/batch.ts'
import type { State, StepModel } from '../../src/infer/types.ts'
import { tfStepModel } from '../../models/tf-step-model.ts'
import { serialize } from '../../onnx/export.ts'
import { generateText } from '../../src/infer/generate.ts'
import { maxAbsDiff, trainTiny } from '../helpers/models.ts'
import { TOL } from '../helpers/consistency.ts'

ortWeb.env.wasm.numThreads = 1

const trained = await trainTiny('Transformer', { dModel: 16, nHead: 2, dFf: 32, p: 0, maxSeqLen: 64, layout: 'pre-ln', positions: 'learned' })
const { manifest, tokenizer } = trained
const axes = pastAxes(manifest)
const runtimes: Record<string, StepModel> = {
  'tfjs': tfStepModel(trained.model, trained.weights, manifest),
  'onnxruntime-node': await loadOrtModel(ort as any, trained.bytes, manifest),
  'onnxruntime-web': await loadOrtModel(ortWeb as any, trained.bytes, manifest),
}
t.teardown(async () => {
  for (const m of Object.values(runtimes)) await m.release?.()
})

const long = tokenizer.enc('If you add 12 to 30 you').slice(0, -1) // without EOS
const short = tokenizer.enc('If you').slice(0, -1)
const nextLong = tokenizer.enc('get').slice(1, 3) // two tokens each, fed one a call
const nextShort = tokenizer.enc('add').slice(1, 3)

/** A row alone: its prefill, then its tokens one a call; the logits of each step and the final state. */
async function alone(m: StepModel, prompt: number[], next: number[]) {
  let { state } = await m.forward([prompt], m.initState(1))
  const logits: Float32Array[] = []
  for (const id of next) {
    const out = await m.forward([[id]], state)
    logits.push(out.logits)
    state = out.state
  }
  return { logits, state }
}

for (const [name, m] of Object.entries(runtimes)) {
  t.test(`${name}: a padded batch equals each row alone`, async (t) => {
    const a = await alone(m, long, nextLong)
    const b = await alone(m, short, nextShort)
    const vocab = manifest.vocabSize

    // Both prefilled alone, then stacked: the shorter cache gets long - short padding slots in front.
    const prefillA = (await m.forward([long], m.initState(1))).state
    const prefillB = (await m.forward([short], m.initState(1))).state
    let { state, padding } = stackRows(axes, [{ state: prefillA, padding: 0 }, { state: prefillB, padding: 0 }])
    t.same(padding, [0, long.length - short.length], 'the shorter row is padded by the difference')
    t.equal(state[0].dims[2], long.length, 'the batch cache is as long as the longest row')
    for (let s = 0; s < nextLong.length; s++) {
      const out = await m.forward([[nextLong[s]], [nextShort[s]]], state, padding)
      const dA = maxAbsDiff(out.logits.subarray(0, vocab), a.logits[s])
      const dB = maxAbsDiff(out.logits.subarray(vocab, 2 * vocab), b.logits[s])
      t.ok(dA <= TOL, `step ${s}: the longer row's logits (max |Δ| ${dA.toExponential(2)})`)
      t.ok(dB <= TOL, `step ${s}: the padded row's logits (max |Δ| ${dB.toExponential(2)})`)
      state = out.state // steady decoding: the output is the next input as it is, the padding unchanged
    }
    // Each row taken back out, without its padding, is the cache it would have had alone.
    const rowB: State = takeRow(axes, state, 2, 1, padding[1])
    t.same(rowB.map((s) => s.dims), b.state.map((s) => s.dims), 'the padded row comes out at its own length')
    t.ok(Math.max(...rowB.map((s, i) => maxAbsDiff(s.data, b.state[i].data))) <= TOL, 'with its own cache')
    const rowA = takeRow(axes, state, 2, 0, padding[0])
    t.ok(Math.max(...rowA.map((s, i) => maxAbsDiff(s.data, a.state[i].data))) <= TOL, 'and so does the other row')

    // Without the padding the short row would attend to the empty slots and see shifted positions.
    const unmasked = await m.forward([[nextLong[0]], [nextShort[0]]], stackRows(axes, [{ state: prefillA, padding: 0 }, { state: prefillB, padding: 0 }]).state)
    t.ok(maxAbsDiff(unmasked.logits.subarray(vocab, 2 * vocab), b.logits[0]) > 1e-3, 'the padding matters: without it the padded row is wrong')

    // A new request (empty cache) joins a row that is decoding: its prompt's first token, batched.
    const joined = stackRows(axes, [{ state: prefillA, padding: 0 }, { state: m.initState(1), padding: 0 }])
    t.same(joined.padding, [0, long.length], 'an empty cache is all padding')
    const out = await m.forward([[nextLong[0]], [short[0]]], joined.state, joined.padding)
    const first = await m.forward([[short[0]]], m.initState(1))
    const d = maxAbsDiff(out.logits.subarray(vocab, 2 * vocab), first.logits)
    t.ok(d <= TOL, `the joining row's logits equal its own first call (max |Δ| ${d.toExponential(2)})`)
  })
}

t.test('the runtimes agree with each other on the padded batch', async (t) => {
  const results: Record<string, Float32Array> = {}
  for (const [name, m] of Object.entries(runtimes)) {
    const prefillA = (await m.forward([long], m.initState(1))).state
    const prefillB = (await m.forward([short], m.initState(1))).state
    const { state, padding } = stackRows(axes, [{ state: prefillA, padding: 0 }, { state: prefillB, padding: 0 }])
    results[name] = (await m.forward([[nextLong[0]], [nextShort[0]]], state, padding)).logits
  }
  for (const name of ['onnxruntime-node', 'onnxruntime-web']) {
    const d = maxAbsDiff(results[name], results.tfjs)
    t.ok(d <= TOL, `${name} = TF.js (max |Δlogit| ${d.toExponential(2)})`)
  }
})

t.test('a graph exported without attention_mask (as before it) takes only the ids and the cache, and agrees', async (t) => {
  const old = serialize(trained.model, trained.weights, undefined, { attentionMask: false })
  t.same(old.manifest.inputs.map((i) => i.name), ['input_ids', 'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value'])
  t.same(manifest.inputs.map((i) => i.name).slice(-2), ['attention_mask', 'position_ids'], 'the default graph takes both')
  const m = await loadOrtModel(ort as any, old.bytes, old.manifest)
  t.teardown(() => m.release?.())
  const opts = { maxNewTokens: 30, temperature: 0 }
  const before = await generateText(m, tokenizer, 'If you add 1', opts)
  const now = await generateText(runtimes['onnxruntime-node'], tokenizer, 'If you add 1', opts)
  t.same(before.tokenIds, now.tokenIds, 'the same greedy tokens')
})
