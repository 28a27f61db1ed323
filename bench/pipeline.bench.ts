// The LSTM and settings lmp demo used before issue 15: TF.js training tokens/s, and onnxruntime-node generation
// speed (one token a call, carrying the state) — medians over steps after a warm-up.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { initBackend } from '../models/backend.ts'
import { train } from '../models/train.ts'
import { MODEL_DEFAULTS } from '../models/lm.ts'
import { serialize } from '../onnx/export.ts'
import { loadOrtModel } from '../src/infer/ort-model.ts'
import { generateText } from '../src/infer/generate.ts'
import { loadDataset } from '../src/data/index.ts'
import { createTokenizer } from '../src/tokenizer/index.ts'
import { median, report } from './util.ts'

const backend = await initBackend()
const samples = await loadDataset('demo', 'train')
const tokenizer = createTokenizer('character', { isUncased: true })
tokenizer.buildVocab(samples)
const modelConfig = {
  ...MODEL_DEFAULTS, model: 'LSTM-2000' as const, vocabSize: tokenizer.vocabSize,
  // The LSTM the demo trained before it moved to a Transformer (issue 15), kept so the numbers compare.
  dEmb: 64, nBlk: 64, dBlk: 2, nLyr: 1,
}
const steps = 30
const trainConfig = {
  batchSize: 64, lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0,
  maxNorm: 1, maxSeqLen: 40, stride: 40, totalStep: steps, warmupStep: 5,
  ckptStep: steps, logStep: steps, seed: 1,
}
const stepMs: number[] = []
const result = await train({
  dir: mkdtempSync(join(tmpdir(), 'lmp-bench-')), modelConfig, trainConfig, tokenizer, samples, quiet: true,
  onStep: ({ step, ms }) => { if (step > 5) stepMs.push(ms) },
})
const tokensPerStep = trainConfig.batchSize * trainConfig.maxSeqLen
report('train', { model: 'LSTM-2000 (former demo settings)', backend, batch: trainConfig.batchSize, seq: trainConfig.maxSeqLen,
  steps: stepMs.length, msPerStepMedian: +median(stepMs).toFixed(1), tokensPerSec: Math.round(tokensPerStep / (median(stepMs) / 1000)) })

const weights: Record<string, { shape: number[]; data: Float32Array }> = {}
for (const [name, spec] of Object.entries(result.model.params())) weights[name] = { shape: spec.shape, data: result.weights[name] }
const { bytes, manifest } = serialize(result.model, weights)
for (const threads of [1, 2]) {
  const model = await loadOrtModel(ort as any, bytes, manifest, { numThreads: threads })
  let { state } = await model.forward([tokenizer.enc('If you add').slice(0, -1)], model.initState(1))
  const us: number[] = []
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now()
    ;({ state } = await model.forward([[5]], state))
    if (i >= 50) us.push((performance.now() - t0) * 1000)
  }
  const t0 = performance.now()
  const gen = await generateText(model, tokenizer, 'If you add 12 to 34 you get', { maxNewTokens: 64, temperature: 0 })
  const genMs = performance.now() - t0
  report('generate', { model: 'LSTM-2000 (former demo settings)', runtime: 'onnxruntime-node', threads, batch: 1,
    usPerTokenMedian: +median(us).toFixed(1), tokensPerSec: Math.round(1e6 / median(us)),
    endToEndTokensPerSec: Math.round(gen.tokenIds.length / (genMs / 1000)), generatedTokens: gen.tokenIds.length })
  await model.release?.()
}
