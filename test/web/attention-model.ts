// A stand-in for an exported Transformer, for the page's attention and embedding views: a one-block
// causal self-attention over a `wte.weight` embedding, written with onnx/proto.ts, whose graph outputs
// `attentions.0` and `attentions.1` [batch, heads, sequence, sequence] beside the logits, as the
// Transformer export will. Stateless (no KV cache), so every call starts at position 0; maxSeqLen
// bounds a call, and scoring slides a window over longer texts.
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { demoSamples } from '../../src/data/demo.ts'
import { createTokenizer } from '../../src/tokenizer/index.ts'
import { saveTokenizer } from '../../src/tokenizer/io.ts'
import { encodeModel, type NodeDef, type TensorDef } from '../../onnx/proto.ts'
import type { Manifest } from '../../src/infer/types.ts'

export const HEADS = 2
export const LAYERS = 2
const DIMS = 8
const MAX_SEQ_LEN = 32

function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const scalar = (name: string, v: number): TensorDef => ({ name, dtype: 'float32', dims: [], data: Float32Array.of(v) })

/** Writes DIR/{onnx/{model.onnx, manifest.json, tokenizer.json}}; returns the onnx folder's files. */
export function writeAttentionModel(root: string, name = 'attn'): { dir: string; onnxDir: string; manifest: Manifest; bytes: Uint8Array } {
  const tokenizer = createTokenizer('character')
  tokenizer.buildVocab(demoSamples('train'))
  const vocab = tokenizer.vocabSize
  const random = seeded(7)
  const wte = Float32Array.from({ length: vocab * DIMS }, () => random() * 2 - 1)
  const head = Float32Array.from({ length: DIMS * vocab }, () => random() * 2 - 1)
  const n = (op: string, inputs: string[], outputs: string[], attrs?: NodeDef['attrs']): NodeDef => ({ op, inputs, outputs, ...(attrs ? { attrs } : {}) })
  const nodes: NodeDef[] = [
    n('Gather', ['wte.weight', 'input_ids'], ['x']),
    n('Transpose', ['x'], ['xt'], { perm: { ints: [0, 2, 1] } }),
    n('MatMul', ['x', 'xt'], ['scores']),
    n('Mul', ['scores', 'scale'], ['scaled']),
    // Causal mask: −1e9 above the diagonal.
    n('Mul', ['scores', 'zero'], ['zeros']),
    n('Add', ['zeros', 'one'], ['ones']),
    n('Trilu', ['ones', 'k1'], ['above'], { upper: { i: 1 } }),
    n('Mul', ['above', 'minus_big'], ['mask']),
    n('Add', ['scaled', 'mask'], ['masked']),
    n('Softmax', ['masked'], ['a0'], { axis: { i: -1 } }),
    n('Mul', ['masked', 'three'], ['sharper']),
    n('Softmax', ['sharper'], ['a1'], { axis: { i: -1 } }),
    n('Unsqueeze', ['a0', 'axis1'], ['h0']),
    n('Unsqueeze', ['a1', 'axis1'], ['h1']),
    n('Concat', ['h0', 'h1'], ['attentions.0'], { axis: { i: 1 } }),
    n('Concat', ['h1', 'h0'], ['attentions.1'], { axis: { i: 1 } }),
    n('MatMul', ['a0', 'x'], ['mixed']),
    n('MatMul', ['mixed', 'lm_head.weight'], ['logits']),
  ]
  const attentionShape = ['batch', HEADS, 'sequence', 'sequence']
  const bytes = encodeModel({
    graph: {
      name: 'attention-stand-in',
      nodes,
      initializers: [
        { name: 'wte.weight', dtype: 'float32', dims: [vocab, DIMS], data: wte },
        { name: 'lm_head.weight', dtype: 'float32', dims: [DIMS, vocab], data: head },
        scalar('scale', 1 / Math.sqrt(DIMS)), scalar('zero', 0), scalar('one', 1), scalar('minus_big', -1e9), scalar('three', 3),
        { name: 'k1', dtype: 'int64', dims: [], data: BigInt64Array.of(1n) },
        { name: 'axis1', dtype: 'int64', dims: [1], data: BigInt64Array.of(1n) },
      ],
      inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] }],
      outputs: [
        { name: 'logits', dtype: 'float32', shape: ['batch', 'sequence', vocab] },
        ...Array.from({ length: LAYERS }, (_, i) => ({ name: `attentions.${i}`, dtype: 'float32' as const, shape: attentionShape })),
      ],
    },
  })
  const manifest: Manifest = {
    format: 'lmp-onnx',
    version: 1,
    architecture: 'Transformer',
    model: 'model.onnx',
    tokenizer: 'tokenizer.json',
    vocabSize: vocab,
    specialTokens: { bos: 0, eos: 1, pad: 2, unk: 3 },
    opset: 17,
    irVersion: 8,
    maxSeqLen: MAX_SEQ_LEN,
    inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] }],
    outputs: [
      { name: 'logits', dtype: 'float32', shape: ['batch', 'sequence', vocab] },
      ...Array.from({ length: LAYERS }, (_, i) => ({ name: `attentions.${i}`, dtype: 'float32' as const, shape: attentionShape })),
    ],
    state: [],
    sha256: createHash('sha256').update(bytes).digest('hex'),
    config: { dEmb: DIMS, nHead: HEADS, nLyr: LAYERS },
  }
  const dir = path.join(root, name)
  const onnxDir = path.join(dir, 'onnx')
  mkdirSync(onnxDir, { recursive: true })
  writeFileSync(path.join(onnxDir, 'model.onnx'), bytes)
  writeFileSync(path.join(onnxDir, 'manifest.json'), JSON.stringify(manifest, null, 2))
  saveTokenizer(path.join(onnxDir, 'tokenizer.json'), tokenizer)
  return { dir, onnxDir, manifest, bytes }
}
