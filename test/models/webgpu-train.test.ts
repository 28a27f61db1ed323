// Training on TF.js's webgpu backend (--backend webgpu, here on SwiftShader) against wasm, for every
// architecture, same seed, dropout 0: the first three steps' losses within 1e-4 relative, every gradient
// within 1e-3 relative, and the trained model exports and scores like the one trained on wasm. Also the
// kernel that returned garbage: AddN over more inputs than a shader may bind storage buffers.
import t from 'tap'
import * as ort from 'onnxruntime-node'
import * as tf from '@tensorflow/tfjs-core'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initBackend } from '../../models/backend.ts'
import { probeAdapter } from '../../models/webgpu.ts'
import { createModel, forwardTf, initWeights, lossTf, MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { TfOps } from '../../models/tf-ops.ts'
import { train } from '../../models/train.ts'
import { serialize } from '../../onnx/export.ts'
import { loadOrtModel } from '../../src/infer/ort-model.ts'
import { scoreTexts } from '../../src/infer/perplexity.ts'
import { createRng } from '../../src/infer/rng.ts'
import { demoSamples } from '../../src/data/demo.ts'
import { createTokenizer } from '../../src/tokenizer/index.ts'
import { ARCHITECTURES } from '../helpers/architectures.ts'
import { tfWebgpuOrSkip } from '../helpers/webgpu-tf.ts'

const relDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let scale = 1e-3
  let d = 0
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]))
    d = Math.max(d, Math.abs(a[i] - b[i]))
  }
  return a.length === b.length && Number.isFinite(d) ? d / scale : Infinity
}

if (await tfWebgpuOrSkip(t)) {
  await t.test('auto never takes a fallback (software) adapter', async (t) => {
    const adapter = await probeAdapter()
    const auto = await initBackend('auto')
    if (adapter.fallback) t.not(auto, 'webgpu', `${adapter.name} is a fallback adapter: auto chose ${auto}`)
    else t.equal(auto === 'tensorflow' ? 'webgpu' : auto, 'webgpu', `${adapter.name} is a GPU: auto chose ${auto}`)
  })

  await t.test('AddN over many inputs sums them all on webgpu', async (t) => {
    await initBackend('webgpu')
    const xs = Array.from({ length: 20 }, (_, i) => tf.fill([5], i + 1))
    const sum = await tf.addN(xs).data()
    t.same(Array.from(sum), Array(5).fill(210), '1 + 2 + ... + 20 in every element (unchunked: zeros and a warning)')
    tf.dispose(xs)
  })

  const tokenizer = createTokenizer('character', { isUncased: true })
  const samples = demoSamples('train').slice(0, 200)
  tokenizer.buildVocab(samples)
  const valid = demoSamples('valid').slice(0, 8)
  const ids = [tokenizer.enc('if you add 12 to 3').slice(0, 12), tokenizer.enc('you get 45 . if you').slice(0, 12)]

  const config = (sizes: Partial<ModelConfig>) => ({
    ...MODEL_DEFAULTS, vocabSize: tokenizer.vocabSize, dEmb: 8, dHid: 8, nBlk: 4, dBlk: 2, nLyr: 1, initLower: -0.3, initUpper: 0.3,
    ...sizes, ...(sizes.model === 'Transformer' ? { maxSeqLen: 16 } : {}),
  }) as ModelConfig

  /** The loss and every weight's gradient on one batch, on the current backend. */
  async function gradients(c: ModelConfig) {
    const m = createModel(c)
    const rng = createRng(5)
    const init = initWeights(m, () => rng.next())
    const vars: Record<string, tf.Variable> = {}
    for (const [n, s] of Object.entries(m.params())) vars[n] = tf.variable(tf.tensor(init[n], s.shape), true, `${tf.getBackend()}-${c.model}-${n}`)
    const { value, grads } = tf.variableGrads(() => {
      const out = forwardTf(m, new TfOps(vars, true), ids, undefined)
      return lossTf(out.logits, ids.map((r) => r.slice(1).concat(-1))).loss
    }, Object.values(vars))
    const result = { loss: (await value.data())[0], grads: {} as Record<string, Float32Array> }
    for (const [n, g] of Object.entries(grads)) result.grads[n.slice(n.indexOf(c.model) + c.model.length + 1)] = (await g.data()) as Float32Array
    tf.dispose([value, ...Object.values(grads), ...Object.values(vars)])
    return result
  }

  /** Three optimizer steps with a checkpoint and a validation at the end; the losses, the validation
   * perplexity (TF.js, in training) and the perplexity of the exported model on onnxruntime-node. */
  async function threeSteps(c: ModelConfig) {
    const losses: number[] = []
    let valPpl = NaN
    const trainConfig = { batchSize: 4, lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1,
      maxSeqLen: 12, stride: 12, totalStep: 3, warmupStep: 1, ckptStep: 3, logStep: 3, seed: 3, evalStep: 3 }
    const r = await train({ dir: mkdtempSync(join(tmpdir(), 'lmp-webgpu-')), modelConfig: c, trainConfig, tokenizer, samples, validSamples: valid,
      quiet: true, onStep: (s) => losses.push(s.loss), onEval: (e) => (valPpl = e.valPpl) })
    const weights: Record<string, { shape: number[]; data: Float32Array }> = {}
    for (const [n, s] of Object.entries(r.model.params())) weights[n] = { shape: s.shape, data: r.weights[n] }
    const { bytes, manifest } = serialize(r.model, weights)
    const m = await loadOrtModel(ort as never, bytes, manifest)
    const ppl = (await scoreTexts(m, tokenizer, valid)).ppl
    await m.release?.()
    return { losses, ppl, valPpl }
  }

  for (const a of ARCHITECTURES) {
    await t.test(`${a.name}: webgpu trains as wasm does`, async (t) => {
      const c = config(a.sizes)
      await initBackend('wasm')
      const want = await gradients(c)
      const wantSteps = await threeSteps(c)
      t.equal(await initBackend('webgpu'), 'webgpu')
      const got = await gradients(c)
      const gotSteps = await threeSteps(c)
      t.ok(Math.abs(got.loss - want.loss) / want.loss <= 1e-4, `loss ${got.loss} = wasm's ${want.loss}`)
      for (const [n, g] of Object.entries(want.grads)) {
        const d = relDiff(got.grads[n], g)
        t.ok(d <= 1e-3, `gradient of ${n}: max |Δ| / max |g| ${d.toExponential(2)}`)
      }
      t.equal(gotSteps.losses.length, 3)
      gotSteps.losses.forEach((l, i) => t.ok(Math.abs(l - wantSteps.losses[i]) / wantSteps.losses[i] <= 1e-4, `step ${i + 1}: loss ${l} = wasm's ${wantSteps.losses[i]}`))
      t.ok(Math.abs(gotSteps.valPpl - wantSteps.valPpl) / wantSteps.valPpl <= 1e-4, `--eval-step: validation perplexity ${gotSteps.valPpl} = wasm's ${wantSteps.valPpl}`)
      t.ok(Math.abs(gotSteps.ppl - wantSteps.ppl) / wantSteps.ppl <= 1e-4, `exported and scored: perplexity ${gotSteps.ppl} = wasm's ${wantSteps.ppl}`)
    })
  }
}
