// A small real exported model for the HTTP and browser tests: an LSTM-2000 with seeded random weights
// over the character tokenizer of the demo dataset, written as EXP/onnx/{model.onnx, manifest.json,
// lmp_tokenizer.json} by the real exporter. Untrained, but its greedy text is fixed by its weights, which
// is all the consistency tests need (and it takes well under a second to build).
import { createRng } from '../../src/infer/rng.ts'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { demoSamples } from '../../src/data/demo.ts'
import { createTokenizer, type TokenizerName } from '../../src/tokenizer/index.ts'
import { loadGpt2Sync } from '../../src/tokenizer/io.ts'
import { saveTokenizerFiles } from '../../src/exp.ts'
import { createModel, initWeights, MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { exportToDir } from '../../onnx/export.ts'
import type { Manifest } from '../../src/infer/types.ts'

/** Writes ROOT/NAME/{lmp_tokenizer.json, tokenizer.json, onnx/...}; returns the experiment folder and the manifest.
 * `sizes` overrides the tiny dimensions, or the architecture (`{ model: 'Transformer', ... }`);
 * `tokenizer` is the tokenizer kind (default character; the others are built on the demo data too,
 * and gpt2 is GPT-2's whole vocabulary, 50,259 tokens: its 50,257 and <pad>, <unk>). */
export async function writeExportedModel(
  root: string,
  name = 'tiny',
  seed = 1,
  sizes: Partial<ModelConfig> = {},
  tokenizerName: TokenizerName = 'character',
): Promise<{ dir: string; manifest: Manifest }> {
  const dir = path.join(root, name)
  mkdirSync(dir, { recursive: true })
  if (tokenizerName === 'gpt2') loadGpt2Sync()
  const tokenizer = createTokenizer(tokenizerName)
  tokenizer.buildVocab(demoSamples('train'))
  await saveTokenizerFiles(dir, tokenizer)
  const model = createModel({
    ...MODEL_DEFAULTS,
    model: 'LSTM-2000',
    vocabSize: tokenizer.vocabSize,
    dEmb: 16,
    dHid: 16,
    nBlk: 4,
    dBlk: 4,
    nLyr: 1,
    ...sizes,
    // Wide weights so the untrained model still prefers different tokens in different contexts.
    initLower: -1,
    initUpper: 1,
  })
  const rng = createRng(seed)
  const random = () => rng.next()
  const weights: Record<string, { shape: number[]; data: Float32Array }> = {}
  const params = model.params()
  for (const [k, data] of Object.entries(initWeights(model, random))) weights[k] = { shape: params[k].shape, data }
  const { manifest } = await exportToDir(model, weights, dir)
  return { dir, manifest }
}
