// TF.js, onnxruntime-node and onnxruntime-web (in Node) agree on every recurrent architecture: logits of a
// whole sequence and of prefill-then-steps, perplexity, and greedy generation.
import t from 'tap'
import * as ort from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import type { StepModel } from '../../src/infer/types.ts'
import { tfStepModel } from '../../models/tf-step-model.ts'
import { generateText } from '../../src/infer/generate.ts'
import { scoreText } from '../../src/infer/perplexity.ts'
import { PAD_ID } from '../../src/tokenizer/index.ts'
import { maxAbsDiff, trainTiny } from '../helpers/models.ts'

ortWeb.env.wasm.numThreads = 1
const TOL = 1e-4

/** Logits of each row for the whole sequence in one call, and for a prefill of `split` tokens then one token a call. */
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
  return { whole, stepped }
}

for (const arch of ['LSTM-2000', 'LSTM-1997', 'LSTM-2002', 'Elman-Net', 'GRU']) {
  t.test(arch, async (t) => {
    const trained = await trainTiny(arch)
    const { tokenizer, bytes, manifest } = trained
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
    t.ok(maxAbsDiff(ref.whole, ref.stepped) <= TOL, 'TF.js: stepping equals the whole sequence')
    const refPpl = await scoreText(runtimes.tfjs, tokenizer, texts[0])
    const refGen = await generateText(runtimes.tfjs, tokenizer, 'If you add 1', { maxNewTokens: 30, temperature: 0 })
    t.ok(refGen.tokenIds.length > 0, 'TF.js generated tokens')
    for (const name of ['onnxruntime-node', 'onnxruntime-web']) {
      const got = await logitsBothWays(runtimes[name], ids, 5)
      const dWhole = maxAbsDiff(ref.whole, got.whole)
      const dStep = maxAbsDiff(ref.whole, got.stepped)
      t.ok(dWhole <= TOL, `${name} whole sequence: max |Δlogit| ${dWhole.toExponential(2)} <= ${TOL}`)
      t.ok(dStep <= TOL, `${name} prefill then steps: max |Δlogit| ${dStep.toExponential(2)} <= ${TOL}`)
      const ppl = await scoreText(runtimes[name], tokenizer, texts[0])
      t.ok(Math.abs(ppl.ppl - refPpl.ppl) / refPpl.ppl <= 1e-5, `${name} perplexity ${ppl.ppl} = TF.js ${refPpl.ppl}`)
      const gen = await generateText(runtimes[name], tokenizer, 'If you add 1', { maxNewTokens: 30, temperature: 0 })
      t.same(gen.tokenIds, refGen.tokenIds, `${name} greedy generation equals TF.js`)
    }
    for (const m of Object.values(runtimes)) await m.release?.()
  })
}
