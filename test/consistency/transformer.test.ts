// TF.js, onnxruntime-node and onnxruntime-web (in Node) agree on the Transformer, in each layout and
// activation and with an odd d_model: logits of a whole sequence and of prefill-then-steps through the
// key/value cache (so the cache equals re-encoding), perplexity, and greedy generation.
import t from 'tap'
import * as ort from 'onnxruntime-node'
import { decodeModel } from '../../onnx/proto.ts'
import type { ModelConfig } from '../../models/lm.ts'
import { trainTiny } from '../helpers/models.ts'
import { checkRuntimesAgree } from '../helpers/consistency.ts'

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
    const { bytes, manifest } = trained
    t.equal(manifest.architecture, 'Transformer')
    t.equal(manifest.maxSeqLen, 64, 'the manifest carries the context length')
    t.equal(manifest.state.length, 4, 'two layers: key and value each')
    const dh = overrides.dModel! / overrides.nHead!
    t.same(manifest.state[0], { input: 'past_key_values.0.key', output: 'present.0.key', shape: ['batch', overrides.nHead, 'past', dh] })
    t.same(manifest.outputs.map((o) => o.name), ['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value', 'attentions.0', 'attentions.1'])
    const graph = decodeModel(bytes).graph
    const ops = new Set(graph.nodes.map((n) => n.op))
    t.notOk(ops.has('Attention') || ops.has('Gelu') || ops.has('FastGelu'), `primitives only: ${[...ops].sort().join(' ')}`)

    const { ref, ids } = await checkRuntimesAgree(t, trained)
    t.same(ref.state[0].dims, [3, overrides.nHead, ids[0].length, dh], 'the cache holds every position')
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
    attention_mask: new ort.Tensor('int64', new BigInt64Array(past[0].dims[2] + ids.length).fill(1n), [1, past[0].dims[2] + ids.length]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(past[0].dims[2] + i))), [1, ids.length]),
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
