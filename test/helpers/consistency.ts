// The cross-runtime check every architecture must pass: TF.js, onnxruntime-node and onnxruntime-web (in
// Node) give the same logits for a whole sequence and for prefill-then-steps (max |Δ| ≤ 1e-5), the same
// perplexity (1e-5 relative) and the same greedy text.
import type { Test } from 'tap'
import * as ort from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import type { StepModel } from '../../src/infer/types.ts'
import { tfStepModel } from '../../models/tf-step-model.ts'
import { generateText } from '../../src/infer/generate.ts'
import { scoreText } from '../../src/infer/perplexity.ts'
import { PAD_ID } from '../../src/tokenizer/index.ts'
import { maxAbsDiff, type trainTiny } from './models.ts'

ortWeb.env.wasm.numThreads = 1
/**
 * Max |Δlogit| between CPU runtimes (TF.js, onnxruntime-node, onnxruntime-web): an independent float64
 * reference put their real float32 error at <= 2.8e-6 on every architecture (issue 11), while a wrong
 * LayerNorm epsilon moves a Transformer's logits by only 1.2e-5 to 8.6e-5 (export-mutations.test.ts).
 */
export const TOL = 1e-5
/** GPU runtimes (WebGPU) sum in other orders and may use fused multiply-adds: they keep 1e-4. */
export const GPU_TOL = 1e-4
const TEXTS = ['If you add 3 to 41 you get 44 .', 'If you add 70 to 8 you get 78 .', 'if you add']

/** Logits of each row for the whole sequence in one call, and for a prefill of `split` tokens then one
 * token a call carrying the state (for the Transformer: its key/value cache). */
export async function logitsBothWays(m: StepModel, ids: number[][], split: number) {
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

type Trained = Awaited<ReturnType<typeof trainTiny>>

/** Runs the whole check as tap assertions; returns TF.js's results for architecture-specific checks. */
export async function checkRuntimesAgree(t: Test, trained: Trained) {
  const { tokenizer, bytes, manifest } = trained
  const encoded = TEXTS.map((x) => tokenizer.enc(x))
  const len = Math.max(...encoded.map((r) => r.length))
  const ids = encoded.map((r) => [...r, ...Array(len - r.length).fill(PAD_ID)])
  const runtimes: Record<string, StepModel> = {
    'tfjs': tfStepModel(trained.model, trained.weights, manifest),
    'onnxruntime-node': await loadOrtModel(ort as any, bytes, manifest),
    'onnxruntime-web': await loadOrtModel(ortWeb as any, bytes, manifest),
  }
  const ref = await logitsBothWays(runtimes.tfjs, ids, 5)
  const dRef = maxAbsDiff(ref.whole, ref.stepped)
  t.ok(dRef <= TOL, `TF.js: stepping with the carried state equals the whole sequence (max |Δlogit| ${dRef.toExponential(2)})`)
  const refPpl = await scoreText(runtimes.tfjs, tokenizer, TEXTS[0])
  const refGen = await generateText(runtimes.tfjs, tokenizer, 'If you add 1', { maxNewTokens: 30, temperature: 0 })
  t.ok(refGen.tokenIds.length > 0, 'TF.js generated tokens')
  for (const name of ['onnxruntime-node', 'onnxruntime-web']) {
    const got = await logitsBothWays(runtimes[name], ids, 5)
    const dWhole = maxAbsDiff(ref.whole, got.whole)
    const dStep = maxAbsDiff(ref.whole, got.stepped)
    t.ok(dWhole <= TOL, `${name} whole sequence: max |Δlogit| ${dWhole.toExponential(2)} <= ${TOL}`)
    t.ok(dStep <= TOL, `${name} prefill then steps: max |Δlogit| ${dStep.toExponential(2)} <= ${TOL}`)
    const ppl = await scoreText(runtimes[name], tokenizer, TEXTS[0])
    t.ok(Math.abs(ppl.ppl - refPpl.ppl) / refPpl.ppl <= 1e-5, `${name} perplexity ${ppl.ppl} = TF.js ${refPpl.ppl}`)
    const gen = await generateText(runtimes[name], tokenizer, 'If you add 1', { maxNewTokens: 30, temperature: 0 })
    t.same(gen.tokenIds, refGen.tokenIds, `${name} greedy generation equals TF.js`)
  }
  for (const m of Object.values(runtimes)) await m.release?.()
  return { ref, ids }
}
