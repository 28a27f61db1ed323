// Export a trained model to one ONNX graph (opset 17, IR 8) that serves both scoring and step-by-step
// generation: `input_ids` plus the carried state in, `logits` plus the next state out (DESIGN.md).
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../src/io/atomic.ts'
import { HF_CONFIG, HF_GENERATION_CONFIG, LMP_TOKENIZER, lmpFiles, saveHfTokenizer, upgradeLayout } from '../src/exp.ts'
import { packageVersion } from '../src/version.ts'
import { loadTokenizer } from '../src/tokenizer/io.ts'
import { LMP_SPECIAL_IDS, type Tokenizer } from '../src/tokenizer/index.ts'
import { ATTENTION_MASK, POSITION_IDS, type Manifest } from '../src/infer/types.ts'
import { manifestDigestInput } from '../src/infer/manifest-check.ts'
import type { LanguageModel } from '../models/lm.ts'
import type { RecurrentLM } from '../models/rnn.ts'
import type { TransformerLM } from '../models/transformer.ts'
import { encodeModel, type AttrValue, type GraphDef } from './proto.ts'
import { GraphBuilder, OnnxOps, type Weights } from './trace.ts'
import { hfGenerationConfig, hfModelConfig } from './hf-config.ts'

export const OPSET = 17
export const IR_VERSION = 8

const stateName = (io: 'in' | 'out', layer: number, name: string) => `state_${io}.${layer}.${name}`

/** Export choices that change the graph, never its numbers (beyond rounding). */
export interface ExportOptions {
  /** Use the standard ONNX LSTM/GRU op where a layer's cell equals it (default true); false keeps the Scan. */
  fused?: boolean
  /**
   * Layer 0's input from a table over the vocabulary where that is no larger than the weights (default
   * true; see embeddedVocabulary); false computes it per position.
   */
  vocabularyTable?: boolean
  /**
   * The Transformer's `attention_mask` and `position_ids` inputs (default true); false leaves them out, as
   * graphs exported before them were: positions follow the cache's length, and rows whose caches hold
   * different numbers of tokens never share a call (tests, before/after bench).
   */
  attentionMask?: boolean
  /**
   * The tokenizer the model was trained with: its kind and special ids go into the manifest and the graph's
   * metadata_props (they describe the export, never change the graph). Without it the manifest gives lmp's
   * own tokenizers' ids (0-3) and the metadata neither ids nor kind.
   */
  tokenizer?: Tokenizer
}


/**
 * The standard ONNX op that equals this model's cell, or null. ONNX `LSTM` has gates per unit: our gates per
 * block of d_blk units become d_blk equal rows of its weights (the same numbers computed d_blk times);
 * LSTM-1997 has no forget gate, which is ONNX's with zero weights and a bias so large that σ gives exactly
 * 1; LSTM-2002's peepholes are ONNX's P when a block is one unit (with more, a gate sums its block's cells).
 * Our GRU (the reset gate applied after the recurrent projection) is ONNX `GRU` with linear_before_reset = 1.
 */
export function fusedOp(model: RecurrentLM): 'LSTM' | 'GRU' | null {
  const c = model.config
  if (c.model === 'GRU') return 'GRU'
  if (c.model === 'LSTM-2000' || c.model === 'LSTM-1997') return 'LSTM'
  if (c.model === 'LSTM-2002' && c.dBlk === 1) return 'LSTM'
  return null
}

/**
 * The recurrent family: embedding over the whole sequence (or, for layer 0, a table over the vocabulary:
 * embeddedVocabulary), then per layer either one standard ONNX LSTM/GRU node (fusedOp) or one big input
 * projection and a Scan over time whose body is the model's own cell, then the tied head over the whole
 * sequence.
 */
export function recurrentGraph(model: RecurrentLM, weights: Weights, options: ExportOptions = {}): GraphDef {
  const op = options.fused === false ? null : fusedOp(model)
  const embedded = options.vocabularyTable === false ? null : embeddedVocabulary(model, weights)
  return op ? fusedRecurrentGraph(model, weights, op, embedded) : scanRecurrentGraph(model, weights, embedded)
}

/** `embedded`: layer 0's input per vocabulary entry (embeddedVocabulary), or null to compute it per position. */
function scanRecurrentGraph(model: RecurrentLM, weights: Weights, embedded: Float32Array | null): GraphDef {
  // With `embedded`, layer 0's input projection per vocabulary entry: one Gather.
  const derived: Weights = {}
  if (embedded) {
    const w = need(weights, 'stack_rnn.0.fc_x2h.weight')
    const bias = Float32Array.from(model.inputBiasNames(0).flatMap((n) => Array.from(need(weights, n).data)))
    derived[TOKEN_PROJECTION] = { shape: [model.config.vocabSize, w.shape[1]], data: matMulF32(embedded, model.config.vocabSize, model.hidden, w.data, w.shape[1], bias) }
  }
  const root = new GraphBuilder({ ...weights, ...derived })
  const o = new OnnxOps(root)
  const ids = root.input('input_ids', 'int64', ['batch', 'sequence'])
  const spec = model.stateSpec()
  for (const s of spec) root.input(stateName('in', s.layer, s.name), 'float32', ['batch', s.size])

  let x = embedded ? null : model.embed(o, ids) // layer l's input; null: layer 0 reads the table
  const outs: { value: string; layer: number; name: string; size: number }[] = []
  for (let l = 0; l < model.config.nLyr; l++) {
    const xp = x === null ? o.embed(root.param(TOKEN_PROJECTION), ids) : model.inputProjection(o, l, x)
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
  const logits = model.head(o, x!) // n_lyr >= 1: x is set
  root.output(logits, 'logits', 'float32', ['batch', 'sequence', model.config.vocabSize])
  for (const s of outs) root.output(s.value, stateName('out', s.layer, s.name), 'float32', ['batch', s.size])
  return root.toGraph(model.config.model)
}

function need(weights: Weights, name: string) {
  const w = weights[name]
  if (!w) throw new Error(`cannot export: the checkpoint has no weight '${name}'`)
  return w
}

/** a [n, k] × b [k, m] (+ bias [m]), summed in float64. */
function matMulF32(a: Float32Array, n: number, k: number, b: Float32Array, m: number, bias?: Float32Array): Float32Array {
  const out = new Float32Array(n * m)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let sum = bias ? bias[j] : 0
      for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * m + j]
      out[i * m + j] = sum
    }
  }
  return out
}

/**
 * Layer 0's input, tanh(E·W_e2h + b_e2h) (models/rnn.ts `embed`), for every vocabulary entry: [V, d_hid].
 * In an export it depends on the token alone (no dropout), so the graph can pick rows of a table made here,
 * or fold it into layer 0's input weights, instead of computing it per position: at batch 1 that matrix work
 * is most of a generation step's before the recurrence. Only when V <= d_hid, so that what stands in for
 * the weights is no larger than they are (a word or BPE vocabulary keeps the per-position graph).
 */
function embeddedVocabulary(model: RecurrentLM, weights: Weights): Float32Array | null {
  const { vocabSize, dEmb } = model.config
  const d = model.hidden
  if (vocabSize > d) return null
  const pre = matMulF32(need(weights, 'emb.weight').data, vocabSize, dEmb, need(weights, 'fc_e2h.weight').data, d, need(weights, 'fc_e2h.bias').data)
  return pre.map(Math.tanh)
}

/**
 * A stored [in, G] weight's column blocks (each `size` wide, taken in `order`) as ONNX's [1, blocks × size, in]:
 * row `b × size + j` of the result is column `order[b] × size + j` of the stored weight.
 */
/** ONNX's [1, gates·size, rows] from our [rows, cols]: row (gate g, unit j) is column source(g, j), or zeros (-1). */
function gateRows(w: { shape: number[]; data: Float32Array }, gates: number, size: number, source: (gate: number, unit: number) => number) {
  const [rows, cols] = w.shape
  const out = new Float32Array(gates * size * rows)
  for (let g = 0; g < gates; g++) {
    for (let j = 0; j < size; j++) {
      const col = source(g, j)
      if (col < 0) continue
      const dst = (g * size + j) * rows
      for (let r = 0; r < rows; r++) out[dst + r] = w.data[r * cols + col]
    }
  }
  return { shape: [1, gates * size, rows], data: out }
}

/** Layer 0's input projection of every vocabulary entry (Scan graphs; see embeddedVocabulary). */
const TOKEN_PROJECTION = 'stack_rnn.0.token_projection'

/** A forget-gate bias that σ turns into exactly 1 in float32 (LSTM-1997, which has no forget gate). */
const ALWAYS_OPEN = 1e4

/**
 * The ONNX LSTM/GRU inputs W, R, B (and P) of layer l, re-laid out from the checkpoint's weights
 * (models/rnn.ts). LSTM: stored columns [ig | fg | og | cell input] with a gate column per block, ONNX gate
 * order i, o, f, c per unit; the biases are the per-gate input-side ones, the recurrent-side half of B is
 * zero; P = [P_i, P_o, P_f]. GRU: stored [z | r | n] is ONNX's z, r, h order; B = fc_x2h.bias ‖ fc_h2h.bias.
 */
function fusedWeights(model: RecurrentLM, weights: Weights, op: 'LSTM' | 'GRU', l: number): Weights {
  const pre = `stack_rnn.${l}`
  const c = model.config
  const d = model.hidden
  const x2h = need(weights, `${pre}.fc_x2h.weight`)
  const h2h = need(weights, `${pre}.fc_h2h.weight`)
  const name = `${pre}.onnx_${op.toLowerCase()}`
  if (op === 'GRU') {
    const bias = new Float32Array(6 * d)
    bias.set(need(weights, `${pre}.fc_x2h.bias`).data, 0)
    bias.set(need(weights, `${pre}.fc_h2h.bias`).data, 3 * d)
    const source = (g: number, j: number) => g * d + j
    return {
      [`${name}.W`]: gateRows(x2h, 3, d, source),
      [`${name}.R`]: gateRows(h2h, 3, d, source),
      [`${name}.B`]: { shape: [1, bias.length], data: bias },
    }
  }
  const forget = c.model !== 'LSTM-1997'
  const nGates = forget ? 3 : 2
  const block = (j: number) => Math.floor(j / c.dBlk)
  // Our stored column of ONNX gate g (i, o, f, c) for unit j; -1: no such gate (zero weights).
  const column = [
    (j: number) => block(j),
    (j: number) => (nGates - 1) * c.nBlk + block(j),
    (j: number) => (forget ? c.nBlk + block(j) : -1),
    (j: number) => nGates * c.nBlk + j,
  ]
  const source = (g: number, j: number) => column[g](j)
  const bias = new Float32Array(8 * d)
  const perUnit = (k: number, values: Float32Array, blocks: boolean) => {
    for (let j = 0; j < d; j++) bias[k * d + j] = values[blocks ? block(j) : j]
  }
  perUnit(0, need(weights, `${pre}.fc_x2ig.bias`).data, true)
  perUnit(1, need(weights, `${pre}.fc_x2og.bias`).data, true)
  if (forget) perUnit(2, need(weights, `${pre}.fc_x2fg.bias`).data, true)
  else bias.fill(ALWAYS_OPEN, 2 * d, 3 * d)
  perUnit(3, need(weights, `${pre}.fc_x2mc_in.bias`).data, false)
  const out: Weights = {
    [`${name}.W`]: gateRows(x2h, 4, d, source),
    [`${name}.R`]: gateRows(h2h, 4, d, source),
    [`${name}.B`]: { shape: [1, bias.length], data: bias },
  }
  if (c.model === 'LSTM-2002') {
    const peep = new Float32Array(3 * d)
    ;['ig', 'og', 'fg'].forEach((g, k) => peep.set(need(weights, `${pre}.pc_c2${g}`).data, k * d))
    out[`${name}.P`] = { shape: [1, 3 * d], data: peep }
  }
  return out
}

/**
 * Each layer one ONNX LSTM/GRU node. The op works time-major ([sequence, batch, ...], layout 0, which every
 * onnxruntime build supports), so the ids are transposed once on the way in and the last layer's output
 * once on the way out; the state keeps its [batch, hidden] inputs and outputs (ONNX adds a direction axis).
 */
function fusedRecurrentGraph(model: RecurrentLM, weights: Weights, op: 'LSTM' | 'GRU', embedded: Float32Array | null): GraphDef {
  const derived: Weights = {}
  for (let l = 0; l < model.config.nLyr; l++) Object.assign(derived, fusedWeights(model, weights, op, l))
  // With `embedded` (embeddedVocabulary), layer 0 reads a one-hot token and its W [1, rows, d_hid] becomes
  // W·(the embedded vocabulary)ᵀ [1, rows, V]: the op's own input product picks the token's column.
  if (embedded) {
    const W = derived[`stack_rnn.0.onnx_${op.toLowerCase()}.W`]
    const [, rows, d] = W.shape
    const V = model.config.vocabSize
    const transposed = new Float32Array(d * V)
    for (let v = 0; v < V; v++) for (let k = 0; k < d; k++) transposed[k * V + v] = embedded[v * d + k]
    W.shape = [1, rows, V]
    W.data = matMulF32(W.data, rows, d, transposed, V)
  }
  const root = new GraphBuilder({ ...weights, ...derived })
  const o = new OnnxOps(root)
  const ids = root.input('input_ids', 'int64', ['batch', 'sequence'])
  const spec = model.stateSpec()
  for (const s of spec) root.input(stateName('in', s.layer, s.name), 'float32', ['batch', s.size])
  const axis = (a: number) => root.constant('int64', [a], [1])
  const unsqueeze = (v: string) => root.node('Unsqueeze', [v, axis(0)])[0]
  const squeeze = (v: string, a: number) => root.node('Squeeze', [v, axis(a)])[0]

  const tokens = o.transpose(ids, [1, 0]) // [sequence, batch]
  let x = embedded
    ? root.node('OneHot', [tokens, root.constant('int64', [model.config.vocabSize], []), root.constant('float32', [0, 1], [2])], { axis: { i: -1 } })[0]
    : model.embed(o, tokens) // [sequence, batch, V or d]
  const outs: { value: string; layer: number; name: string; size: number }[] = []
  for (let l = 0; l < model.config.nLyr; l++) {
    const pre = `stack_rnn.${l}.onnx_${op.toLowerCase()}`
    const layerState = spec.filter((s) => s.layer === l) // h, then c for the LSTM
    const initial = layerState.map((s) => unsqueeze(stateName('in', l, s.name)))
    const inputs = [x, root.param(`${pre}.W`), root.param(`${pre}.R`), root.param(`${pre}.B`), '', ...initial]
    if (`${pre}.P` in derived) inputs.push(root.param(`${pre}.P`)) // peepholes
    const attrs: Record<string, AttrValue> = { hidden_size: { i: model.hidden } }
    if (op === 'GRU') attrs.linear_before_reset = { i: 1 } // the reset gate multiplies U_n h + b_hn
    const [y, ...last] = root.node(op, inputs, attrs, 1 + layerState.length) // Y [S, 1, B, h], Y_h (, Y_c) [1, B, h]
    layerState.forEach((s, k) => outs.push({ value: squeeze(last[k], 0), layer: l, name: s.name, size: s.size }))
    x = model.between(o, squeeze(y, 1))
  }
  const logits = model.head(o, o.transpose(x, [1, 0, 2]))
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
 * With `attention_mask` [batch, past+sequence] and `position_ids` [batch, sequence] (int64; see
 * ATTENTION_MASK) rows whose caches hold different numbers of tokens share a call, their caches aligned at
 * the end and the empty slots in front masked out of attention (the server's batches).
 */
export function transformerGraph(model: TransformerLM, weights: Weights, options: ExportOptions = {}): GraphDef {
  const root = new GraphBuilder(weights)
  const o = new OnnxOps(root)
  const c = model.config
  const ids = root.input('input_ids', 'int64', ['batch', 'sequence'])
  const pastShape = model.cacheShape()
  const past = Array.from({ length: c.nLyr }, (_, l) => ({
    key: root.input(pastName(l, 'key'), 'float32', pastShape),
    value: root.input(pastName(l, 'value'), 'float32', pastShape),
  }))
  const rows = options.attentionMask === false ? null : {
    attentionMask: root.input(ATTENTION_MASK, 'int64', ['batch', 'past+sequence']),
    positions: root.input(POSITION_IDS, 'int64', ['batch', 'sequence']),
  }
  const { logits, present, attentions } = model.forward(o, ids, past, rows)
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
export function buildExport(model: LanguageModel, weights: Weights, checkpoint?: number, options: ExportOptions = {}) {
  const graph = model.kind === 'transformer' ? transformerGraph(model, weights, options) : recurrentGraph(model, weights, options)
  const manifest: Omit<Manifest, 'sha256'> = {
    format: 'lmp-onnx',
    version: 1,
    architecture: model.config.model,
    model: 'model.onnx',
    tokenizer: LMP_TOKENIZER,
    vocabSize: model.config.vocabSize,
    specialTokens: { ...(options.tokenizer?.specialIds ?? LMP_SPECIAL_IDS) },
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

/**
 * The graph's metadata_props (ONNX ModelProto field 14, string → string), so that the file describes itself
 * without the manifest: `architecture` ('Transformer', 'LSTM-2000', ...), `vocab_size`, `max_seq_len`
 * (the longest context in one call; absent for recurrent models, which have none), and with a tokenizer
 * its kind (`tokenizer`: lmp's tknzr_name, 'character' | 'whitespace' | 'BPE' | 'gpt2') and
 * `bos_token_id`, `eos_token_id`, `pad_token_id`, `unk_token_id` (Hugging Face's names for them).
 */
export function onnxMetadata(manifest: Omit<Manifest, 'sha256'>, tokenizer?: Tokenizer): Record<string, string> {
  const meta: Record<string, string> = { architecture: manifest.architecture, vocab_size: String(manifest.vocabSize) }
  if (manifest.maxSeqLen !== null) meta.max_seq_len = String(manifest.maxSeqLen)
  if (tokenizer) {
    meta.tokenizer = tokenizer.name
    for (const [k, id] of Object.entries(manifest.specialTokens)) meta[`${k}_token_id`] = String(id)
  }
  return meta
}

export function serialize(model: LanguageModel, weights: Weights, checkpoint?: number, options: ExportOptions = {}): { bytes: Uint8Array; manifest: Manifest } {
  const { graph, manifest } = buildExport(model, weights, checkpoint, options)
  const bytes = encodeModel({
    graph,
    opset: OPSET,
    irVersion: IR_VERSION,
    producerName: 'lm-playground',
    producerVersion: packageVersion(),
    metadata: onnxMetadata(manifest, options.tokenizer),
  })
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const full: Manifest = { ...manifest, sha256 }
  // The manifest's own checksum: covers what the graph cannot tell (state pairs, vocabulary, config) and sha256.
  return { bytes, manifest: { ...full, manifestSha256: createHash('sha256').update(manifestDigestInput(full)).digest('hex') } }
}

/**
 * Writes exp/NAME/onnx/{model.onnx, lmp_tokenizer.json (a copy of the experiment's), manifest.json} and
 * Hugging Face's files in exp/NAME: tokenizer.json and tokenizer_config.json (saveHfTokenizer; for a
 * Transformer with model_max_length = the context), and for a Transformer config.json and
 * generation_config.json (hfModelConfig, hfGenerationConfig), so that transformers.js opens exp/NAME. Each file atomically. The tokenizer is the experiment's (lmpFiles); a folder of the old layout is
 * upgraded first (upgradeLayout). Recurrent models get no config.json: transformers.js has no class for them.
 */
export async function exportToDir(model: LanguageModel, weights: Weights, expDir: string, checkpoint?: number, options: ExportOptions = {}): Promise<{ dir: string; manifest: Manifest }> {
  upgradeLayout(expDir)
  const tokenizerPath = lmpFiles(expDir).tokenizer
  const tokenizer = options.tokenizer ?? loadTokenizer(tokenizerPath) // a one-line error when missing or corrupt
  const tokenizerBytes = readFileSync(tokenizerPath)
  const dir = join(expDir, 'onnx')
  mkdirSync(dir, { recursive: true })
  const { bytes, manifest } = serialize(model, weights, checkpoint, { ...options, tokenizer })
  await writeFileAtomic(join(dir, 'model.onnx'), bytes)
  await writeFileAtomic(join(dir, LMP_TOKENIZER), tokenizerBytes)
  await writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  // An export of the old layout kept lmp's tokenizer here under Hugging Face's name; the manifest no longer names it.
  rmSync(join(dir, 'tokenizer.json'), { force: true })
  // Again (train-model and train-tknzr wrote them): an upgraded old folder has none yet, and the context
  // is known now.
  await saveHfTokenizer(expDir, tokenizer, model.kind === 'transformer' ? model.config.maxSeqLen : undefined)
  if (model.kind === 'transformer') {
    const json = (x: unknown) => JSON.stringify(x, null, 2) + '\n'
    await writeFileAtomic(join(expDir, HF_CONFIG), json(hfModelConfig(model.config, manifest.specialTokens)))
    await writeFileAtomic(join(expDir, HF_GENERATION_CONFIG), json(hfGenerationConfig(manifest.specialTokens)))
  }
  return { dir, manifest }
}
