// Export a trained model to one ONNX graph (opset 17, IR 8) that serves both scoring and step-by-step
// generation: `input_ids` plus the carried state in, `logits` plus the next state out (DESIGN.md).
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../src/io/atomic.ts'
import type { Manifest } from '../src/infer/types.ts'
import type { LanguageModel } from '../models/lm.ts'
import type { RecurrentLM } from '../models/rnn.ts'
import type { TransformerLM } from '../models/transformer.ts'
import { encodeModel, type GraphDef } from './proto.ts'
import { GraphBuilder, OnnxOps, type Weights } from './trace.ts'

export const OPSET = 17
export const IR_VERSION = 8

const stateName = (io: 'in' | 'out', layer: number, name: string) => `state_${io}.${layer}.${name}`

/**
 * The recurrent family: embedding over the whole sequence, then per layer one big input projection and a
 * Scan over time whose body is the model's own cell, then the tied head over the whole sequence.
 */
export function recurrentGraph(model: RecurrentLM, weights: Weights): GraphDef {
  const root = new GraphBuilder(weights)
  const o = new OnnxOps(root)
  const ids = root.input('input_ids', 'int64', ['batch', 'sequence'])
  const spec = model.stateSpec()
  for (const s of spec) root.input(stateName('in', s.layer, s.name), 'float32', ['batch', s.size])

  let x = model.embed(o, ids)
  const outs: { value: string; layer: number; name: string; size: number }[] = []
  for (let l = 0; l < model.config.nLyr; l++) {
    const xp = model.inputProjection(o, l, x)
    const layerState = spec.filter((s) => s.layer === l)
    const body = root.subgraph()
    const ob = new OnnxOps(body)
    const stateIn = layerState.map((s) => body.input(`l${l}.${s.name}_prev`, 'float32', ['batch', s.size]))
    const width = weights[`stack_rnn.${l}.fc_x2h.weight`]?.shape[1] ?? 0
    const xpStep = body.input(`l${l}.xp_t`, 'float32', ['batch', width])
    const next = model.cell(ob, l, xpStep, stateIn)
    next.forEach((v, k) => body.output(v, `l${l}.${layerState[k].name}_next`, 'float32', ['batch', layerState[k].size]))
    body.output(next[0], `l${l}.h_t`, 'float32', ['batch', model.hidden])
    const scanOuts = root.node(
      'Scan',
      [...layerState.map((s) => stateName('in', l, s.name)), xp],
      {
        body: { g: body.toGraph(`layer${l}_step`) },
        num_scan_inputs: { i: 1 },
        scan_input_axes: { ints: [1] },
        scan_output_axes: { ints: [1] },
      },
      layerState.length + 1,
    )
    layerState.forEach((s, k) => outs.push({ value: scanOuts[k], layer: l, name: s.name, size: s.size }))
    x = model.between(o, scanOuts[layerState.length])
  }
  const logits = model.head(o, x)
  root.output(logits, 'logits', 'float32', ['batch', 'sequence', model.config.vocabSize])
  for (const s of outs) root.output(s.value, stateName('out', s.layer, s.name), 'float32', ['batch', s.size])
  return root.toGraph(model.config.model)
}

const pastName = (layer: number, kv: 'key' | 'value') => `past_key_values.${layer}.${kv}`
const presentName = (layer: number, kv: 'key' | 'value') => `present.${layer}.${kv}`

/**
 * The Transformer with a key/value cache: `input_ids` [batch, sequence] and per layer
 * `past_key_values.{i}.key|value` [batch, heads, past, head_dim] (zero-length on the first call) in;
 * `logits`, `present.{i}.key|value` [batch, heads, past+sequence, head_dim] and the attention
 * probabilities `attentions.{i}` [batch, heads, sequence, past+sequence] out. Positions start at the
 * past length, read from the cache's shape, so a generated token costs one position of attention.
 */
export function transformerGraph(model: TransformerLM, weights: Weights): GraphDef {
  const root = new GraphBuilder(weights)
  const o = new OnnxOps(root)
  const c = model.config
  const ids = root.input('input_ids', 'int64', ['batch', 'sequence'])
  const pastShape = model.cacheShape()
  const past = Array.from({ length: c.nLyr }, (_, l) => ({
    key: root.input(pastName(l, 'key'), 'float32', pastShape),
    value: root.input(pastName(l, 'value'), 'float32', pastShape),
  }))
  const { logits, present, attentions } = model.forward(o, ids, past)
  root.output(logits, 'logits', 'float32', ['batch', 'sequence', c.vocabSize])
  const presentShape = ['batch', c.nHead, 'past+sequence', model.headDim]
  present.forEach((kv, l) => {
    root.output(kv.key, presentName(l, 'key'), 'float32', presentShape)
    root.output(kv.value, presentName(l, 'value'), 'float32', presentShape)
  })
  attentions.forEach((a, l) => root.output(a, `attentions.${l}`, 'float32', ['batch', c.nHead, 'sequence', 'past+sequence']))
  return root.toGraph(c.model)
}

/** Manifest state entries: each input is fed the matching output of the previous call. */
function manifestState(model: LanguageModel): Manifest['state'] {
  if (model.kind === 'transformer') {
    return Array.from({ length: model.config.nLyr }, (_, l) => (['key', 'value'] as const).map((kv) => ({
      input: pastName(l, kv), output: presentName(l, kv), shape: model.cacheShape(),
    }))).flat()
  }
  return model.stateSpec().map((s) => ({
    input: stateName('in', s.layer, s.name),
    output: stateName('out', s.layer, s.name),
    shape: ['batch', s.size],
  }))
}

/** The graph and its manifest (without the checksum, which depends on the serialized bytes). */
export function buildExport(model: LanguageModel, weights: Weights, checkpoint?: number) {
  const graph = model.kind === 'transformer' ? transformerGraph(model, weights) : recurrentGraph(model, weights)
  const manifest: Omit<Manifest, 'sha256'> = {
    format: 'lmp-onnx',
    version: 1,
    architecture: model.config.model,
    model: 'model.onnx',
    tokenizer: 'tokenizer.json',
    vocabSize: model.config.vocabSize,
    specialTokens: { bos: 0, eos: 1, pad: 2, unk: 3 },
    opset: OPSET,
    irVersion: IR_VERSION,
    maxSeqLen: model.kind === 'transformer' ? model.config.maxSeqLen : null,
    inputs: graph.inputs.map((v) => ({ name: v.name, dtype: v.dtype as 'int64' | 'float32', shape: v.shape })),
    outputs: graph.outputs.map((v) => ({ name: v.name, dtype: v.dtype as 'int64' | 'float32', shape: v.shape })),
    state: manifestState(model),
    config: { ...model.config, ...(checkpoint !== undefined ? { checkpoint } : {}) },
  }
  return { graph, manifest }
}

export function serialize(model: LanguageModel, weights: Weights, checkpoint?: number): { bytes: Uint8Array; manifest: Manifest } {
  const { graph, manifest } = buildExport(model, weights, checkpoint)
  const bytes = encodeModel({
    graph,
    opset: OPSET,
    irVersion: IR_VERSION,
    producerName: 'lm-playground',
    metadata: { architecture: manifest.architecture },
  })
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  return { bytes, manifest: { ...manifest, sha256 } }
}

/** Write exp/NAME/onnx/{model.onnx, manifest.json, tokenizer.json}; each file atomically. */
export async function exportToDir(model: LanguageModel, weights: Weights, expDir: string, checkpoint?: number): Promise<{ dir: string; manifest: Manifest }> {
  const dir = join(expDir, 'onnx')
  mkdirSync(dir, { recursive: true })
  const { bytes, manifest } = serialize(model, weights, checkpoint)
  await writeFileAtomic(join(dir, 'model.onnx'), bytes)
  await writeFileAtomic(join(dir, 'tokenizer.json'), readFileSync(join(expDir, 'tokenizer.json')))
  await writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  return { dir, manifest }
}
