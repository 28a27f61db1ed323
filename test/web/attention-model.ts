// A real exported Transformer for the page's attention and embedding views: two layers of two heads over a
// `wte.weight` embedding, with seeded random weights, written by the real exporter (onnx/export.ts), so
// its graph has the key/value cache and outputs `attentions.0|1` [batch, heads, sequence, past+sequence]
// beside the logits. Untrained: the views only need its numbers to be fixed.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { demoSamples } from '../../src/data/demo.ts'
import { createTokenizer } from '../../src/tokenizer/index.ts'
import { saveTokenizerFiles } from '../../src/exp.ts'
import { createRng } from '../../src/infer/rng.ts'
import { createModel, initWeights, MODEL_DEFAULTS } from '../../models/lm.ts'
import { exportToDir } from '../../onnx/export.ts'
import type { Manifest } from '../../src/infer/types.ts'

export const HEADS = 2
export const LAYERS = 2

/** Writes ROOT/NAME/{lmp_tokenizer.json, tokenizer.json, Hugging Face's files, onnx/{model.onnx, manifest.json, lmp_tokenizer.json}}. */
export async function writeAttentionModel(root: string, name = 'attn'): Promise<{ dir: string; onnxDir: string; manifest: Manifest; bytes: Uint8Array }> {
  const dir = path.join(root, name)
  const tokenizer = createTokenizer('character')
  tokenizer.buildVocab(demoSamples('train'))
  await saveTokenizerFiles(dir, tokenizer)
  const model = createModel({
    ...MODEL_DEFAULTS, model: 'Transformer', vocabSize: tokenizer.vocabSize, dModel: 8, nHead: HEADS, dFf: 16,
    nLyr: LAYERS, maxSeqLen: 32, initLower: -1, initUpper: 1,
  })
  const rng = createRng(7)
  const params = model.params()
  const weights: Record<string, { shape: number[]; data: Float32Array }> = {}
  for (const [k, data] of Object.entries(initWeights(model, () => rng.next()))) weights[k] = { shape: params[k].shape, data }
  const { dir: onnxDir, manifest } = await exportToDir(model, weights, dir)
  return { dir, onnxDir, manifest, bytes: new Uint8Array(readFileSync(path.join(onnxDir, 'model.onnx'))) }
}
