// Small trained models for tests: a few real optimizer steps (dropout on) on the demo data, so the
// weights are not just their initial values.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initBackend } from '../../models/backend.ts'
import { MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { train } from '../../models/train.ts'
import { loadDataset } from '../../src/data/index.ts'
import { createTokenizer } from '../../src/tokenizer/index.ts'
import { serialize } from '../../onnx/export.ts'
import type { Weights } from '../../onnx/trace.ts'

export async function trainTiny(model: string, overrides: Partial<ModelConfig> = {}, steps = 15) {
  await initBackend()
  const samples = await loadDataset('demo', 'train')
  const tokenizer = createTokenizer('character', { isUncased: true })
  tokenizer.buildVocab(samples)
  const modelConfig = {
    ...MODEL_DEFAULTS, model, vocabSize: tokenizer.vocabSize, dEmb: 16, dHid: 24, nBlk: 6, dBlk: 4, nLyr: 2,
    pEmb: 0.1, pHid: 0.1, initLower: -0.3, initUpper: 0.3, ...overrides,
  } as ModelConfig
  const trainConfig = {
    batchSize: 16, lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1,
    maxSeqLen: 40, stride: 40, totalStep: steps, warmupStep: 3, ckptStep: steps, logStep: steps, seed: 7,
  }
  const dir = mkdtempSync(join(tmpdir(), 'lmp-tiny-'))
  const result = await train({ dir, modelConfig, trainConfig, tokenizer, samples, quiet: true })
  const weights: Weights = {}
  for (const [name, spec] of Object.entries(result.model.params())) weights[name] = { shape: spec.shape, data: result.weights[name] }
  const { bytes, manifest } = serialize(result.model, weights)
  return { ...result, weights, tokenizer, bytes, manifest, dir, samples }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return Number.isNaN(m) ? Infinity : m
}
