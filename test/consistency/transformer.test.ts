// TF.js, onnxruntime-node and onnxruntime-web (in Node) agree on the Transformer, in each layout and
// activation and with an odd d_model: logits of a whole sequence and of prefill-then-steps through the
// key/value cache (so the cache equals re-encoding), perplexity, and greedy generation.
import t from 'tap'
import * as ort from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import type { StepModel } from '../../src/infer/types.ts'
import { tfStepModel } from '../../models/tf-step-model.ts'
import { generateText } from '../../src/infer/generate.ts'
import { scoreText } from '../../src/infer/perplexity.ts'
import { PAD_ID } from '../../src/tokenizer/index.ts'
import { decodeModel } from '../../onnx/proto.ts'
import type { ModelConfig } from '../../models/lm.ts'
import { maxAbsDiff, trainTiny } from '../helpers/models.ts'

ortWeb.env.wasm.numThreads = 1
const TOL = 1e-4

/** Logits of each row for the whole sequence in one call (no cache), and for a prefill of `split` tokens
 * then one token a call (the cache). */
async function logitsBothWays(m: StepModel, ids: number[][], split: number) {
  const whole = (await m.forward(ids, m.initState(ids.length))).logits
  const vocab = whole.length / (ids.length * ids[0].length)
  const stepped = new Float32Array(whole.length)
  let { logits, state } = await m.forward(ids.map((r) => r.slice(0, split)), m.initState(ids.length))
  const put = (lg: Float32Array, from: number, len: number) =>
    ids.forEach((_, b) => stepped.set(lg.subarray(b * len * vocab, (b + 1) * len * vocab), (b * ids[0].length + from) * vocab))
  put(logits, 0, split)
  for (let s = split; s < ids[0].length; s++) {
    ;({ logits, state } = await m.forward(ids.map((r) => [r[s]]), state))
    put(logits, s, 1)
  }
  return { whole, stepped, state }
}

const base = { dModel: 16, nHead: 2, dFf: 32, p: 0.1, maxSeqLen: 64 }
const variants: [string, Partial<ModelConfig>][] = [
  ['pre-LN, GELU, learned positions (GPT-2 layout)', { ...base, layout: 'pre-ln', activation: 'gelu', positions: 'learned' }],
  ['post-LN, ReLU, sinusoidal positions (lmp layout)', { ...base, layout: 'post-ln', activation: 'relu', positions: 'sinusoidal' }],
  ['pre-LN, ReLU, odd d_model 15 with sinusoidal positions', { ...base, dModel: 15, nHead: 3, layout: 'pre-ln', activation: 'relu', positions: 'sinusoidal' }],
  ['post-LN, GELU, learned positions', { ...base, layout: 'post-ln', activation: 'gelu', positions: 'learned' }],
]

for (const [name, overrides] of variants) {
  t.test(name, async (t) => {
    const trained = await trainTiny('Transformer', overrides)
    const { tokenizer, bytes, manifest } = trained
    t.equal(manifest.architecture, 'Transformer')
    t.equal(manifest.maxSeqLen, 64, 'the manifest carries the context length')
    t.equal(manifest.state.length, 4, 'two layers: key and value each')
    const dh = overrides.dModel! / overrides.nHead!
    t.same(manifest.state[0], { input: 'past_key_values.0.key', output: 'present.0.key', shape: ['batch', overrides.nHead, 'past', dh] })
    t.same(manifest.outputs.map((o) => o.name), ['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value', 'attentions.0', 'attentions.1'])
    const graph = decodeModel(bytes).graph
    const ops = new Set(graph.nodes.map((n) => n.op))
    t.notOk(ops.has('Attention') || ops.has('Gelu') || ops.has('FastGelu'), `primitives only: ${[...ops].sort().join(' ')}`)

    const texts = ['If you add 3 to 41 you get 44 .', 'If you add 70 to 8 you get 78 .', 'if you add']
    const encoded = texts.map((x) => tokenizer.enc(x))
    const len = Math.max(...encoded.map((r) => r.length))
    const ids = encoded.map((r) => [...r, ...Array(len - r.length).fill(PAD_ID)])

    const runtimes: Record<string, StepModel> = {
      'tfjs': tfStepModel(trained.model, trained.weights, manifest),
      'onnxruntime-node': await loadOrtModel(ort as any, bytes, manifest),
      'onnxruntime-web': await loadOrtModel(ortWeb as any, bytes, manifest),
    }
    const ref = await logitsBothWays(runtimes.tfjs, ids, 5)
    const dRef = maxAbsDiff(ref.whole, ref.stepped)
    t.ok(dRef <= TOL, `TF.js: the cache equals re-encoding: max |Δlogit| ${dRef.toExponential(2)}`)
    t.same(ref.state[0].dims, [3, overrides.nHead, len, dh], 'the cache holds every position')
    const refPpl = await scoreText(runtimes.tfjs, tokenizer, texts[0])
    const refGen = await generateText(runtimes.tfjs, tokenizer, 'If you add 1', { maxNewTokens: 30, temperature: 0 })
    t.ok(refGen.tokenIds.length > 0, 'TF.js generated tokens')
    for (const rt of ['onnxruntime-node', 'onnxruntime-web']) {
      const got = await logitsBothWays(runtimes[rt], ids, 5)
      const dWhole = maxAbsDiff(ref.whole, got.whole)
      const dStep = maxAbsDiff(ref.whole, got.stepped)
      t.ok(dWhole <= TOL, `${rt} whole sequence: max |Δlogit| ${dWhole.toExponential(2)} <= ${TOL}`)
      t.ok(dStep <= TOL, `${rt} prefill then steps with the cache: max |Δlogit| ${dStep.toExponential(2)} <= ${TOL}`)
      t.ok(maxAbsDiff(got.whole, got.stepped) <= TOL, `${rt}: the cache equals re-encoding`)
      const ppl = await scoreText(runtimes[rt], tokenizer, texts[0])
      t.ok(Math.abs(ppl.ppl - refPpl.ppl) / refPpl.ppl <= 1e-5, `${rt} perplexity ${ppl.ppl} = TF.js ${refPpl.ppl}`)
      const gen = await generateText(runtimes[rt], tokenizer, 'If you add 1', { maxNewTokens: 30, temperature: 0 })
      t.same(gen.tokenIds, refGen.tokenIds, `${rt} greedy generation equals TF.js`)
    }
    for (const m of Object.values(runtimes)) await m.release?.()
  })
}

t.test('attention probabilities: causal, normalized, over past + new positions', async (t) => {
  const trained = await trainTiny('Transformer', { ...base, layout: 'pre-ln' }, 3)
  const session = await ort.InferenceSession.create(trained.bytes)
  const h = 2
  const dh = 8
  const run = (ids: number[], past: ort.Tensor[]) => session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    ...Object.fromEntries([0, 1].flatMap((l) => [[`past_key_values.${l}.key`, past[2 * l]], [`past_key_values.${l}.value`, past[2 * l + 1]]])),
  })
  const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, h, 0, dh])
  const first = await run([0, 10, 11, 12, 13], [empty(), empty(), empty(), empty()])
  const a = first['attentions.1']
  t.same(a.dims, [1, h, 5, 5])
  const p = a.data as Float32Array
  for (let head = 0; head < h; head++) {
    for (let i = 0; i < 5; i++) {
      const row = Array.from(p.subarray((head * 5 + i) * 5, (head * 5 + i + 1) * 5))
      t.ok(Math.abs(row.reduce((x, y) => x + y, 0) - 1) < 1e-5, `row ${i} sums to 1`)
      t.ok(row.slice(i + 1).every((x) => x === 0), `row ${i} gives no weight to later positions`)
    }
  }
  const next = await run([14], [first['present.0.key'], first['present.0.value'], first['present.1.key'], first['present.1.value']])
  t.same(next['attentions.0'].dims, [1, h, 1, 6], 'one new query over 5 cached + 1 new keys')
  t.same(next['present.1.value'].dims, [1, h, 6, dh])
  t.same(next.logits.dims, [1, 1, trained.tokenizer.vocabSize])
})
