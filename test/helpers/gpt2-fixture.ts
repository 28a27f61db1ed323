// A small GPT-2-shaped checkpoint in Hugging Face's layout, written with the test's own code (nothing from
// models/ or src/): what `huggingface-cli download gpt2` leaves in a folder, at 2 layers and d_model 64 but
// with GPT-2's real 50,257-token vocabulary (taken from gpt-tokenizer's ranks), random weights from a seed.
//   config.json        GPT2Config fields (transformers/models/gpt2/configuration_gpt2.py)
//   model.safetensors  GPT2LMHeadModel's state dict: `transformer.` names (or GPT2Model's bare names),
//                      Conv1D weights [in, out], causal-mask buffers h.{i}.attn.bias, lm_head.weight = wte
//   vocab.json + merges.txt (GPT-2's original files) or tokenizer.json (Hugging Face tokenizers' BPE)
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ranksModule from 'gpt-tokenizer/bpeRanks/r50k_base'

export const FIXTURE = { nLayer: 2, nHead: 4, nEmbd: 64, nPositions: 128, vocabSize: 50257 }
export const EOT = '<|endoftext|>'

/** GPT-2's bytes_to_unicode (encoder.py). */
function byteChars(): string[] {
  const out: string[] = []
  let n = 0
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)
    out[b] = String.fromCodePoint(printable ? b : 256 + n++)
  }
  return out
}

/** GPT-2's tokens ('Ġworld' form), index = id, from gpt-tokenizer's ranks. */
export function gpt2Tokens(): string[] {
  const ranks = ((ranksModule as any).default ?? ranksModule) as (string | number[])[]
  const bc = byteChars()
  const utf8 = new TextEncoder()
  return ranks.map((e) => Array.from(typeof e === 'string' ? utf8.encode(e) : e, (b) => bc[b]).join(''))
}

/**
 * GPT-2's merges, recovered from the ranks as tiktoken's converters do: token r (r >= 256) is the merge that
 * byte-level BPE over its own characters, using only tokens ranked below r, ends with as two parts.
 */
export function gpt2Merges(tokens: string[]): [string, string][] {
  const rank = new Map(tokens.map((t, i) => [t, i]))
  const merges: [string, string][] = []
  for (let r = 256; r < tokens.length; r++) {
    let parts = Array.from(tokens[r])
    while (parts.length > 2) {
      let best = -1, bestRank = Infinity
      for (let i = 0; i + 1 < parts.length; i++) {
        const k = rank.get(parts[i] + parts[i + 1])
        if (k !== undefined && k < r && k < bestRank) { bestRank = k; best = i }
      }
      if (best < 0) throw new Error(`no merge path to token ${r}`)
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)]
    }
    merges.push([parts[0], parts[1]])
  }
  return merges
}

/** mulberry32: a seeded uniform source. */
function rng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export type Tensors = Record<string, { shape: number[]; data: Float32Array }>

/** GPT-2's weights for FIXTURE's shape (bare names), random: N(0, 0.02)-like matrices, gains near 1. */
export function fixtureWeights(seed = 7, f = FIXTURE): Tensors {
  const r = rng(seed)
  const t: Tensors = {}
  // Sum of 4 uniforms: roughly normal, std = scale.
  const fill = (name: string, shape: number[], scale: number, mean = 0) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1))
    for (let i = 0; i < data.length; i++) data[i] = mean + scale * Math.sqrt(3) * (r() + r() + r() + r() - 2)
    t[name] = { shape, data }
  }
  const d = f.nEmbd
  fill('wte.weight', [f.vocabSize, d], 0.1)
  fill('wpe.weight', [f.nPositions, d], 0.05)
  for (let l = 0; l < f.nLayer; l++) {
    fill(`h.${l}.ln_1.weight`, [d], 0.1, 1)
    fill(`h.${l}.ln_1.bias`, [d], 0.05)
    fill(`h.${l}.attn.c_attn.weight`, [d, 3 * d], 0.15)
    fill(`h.${l}.attn.c_attn.bias`, [3 * d], 0.05)
    fill(`h.${l}.attn.c_proj.weight`, [d, d], 0.1)
    fill(`h.${l}.attn.c_proj.bias`, [d], 0.05)
    fill(`h.${l}.ln_2.weight`, [d], 0.1, 1)
    fill(`h.${l}.ln_2.bias`, [d], 0.05)
    fill(`h.${l}.mlp.c_fc.weight`, [d, 4 * d], 0.1)
    fill(`h.${l}.mlp.c_fc.bias`, [4 * d], 0.05)
    fill(`h.${l}.mlp.c_proj.weight`, [4 * d, d], 0.1)
    fill(`h.${l}.mlp.c_proj.bias`, [d], 0.05)
  }
  fill('ln_f.weight', [d], 0.1, 1)
  fill('ln_f.bias', [d], 0.05)
  return t
}

/** safetensors bytes (github.com/huggingface/safetensors): u64 header length, JSON header, F32 data. */
export function safetensorsBytes(tensors: Tensors): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } }
  let offset = 0
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    offset += t.data.byteLength
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const head = new TextEncoder().encode(json)
  const out = new Uint8Array(8 + head.length + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true)
  out.set(head, 8)
  let at = 8 + head.length
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at)
    at += t.data.byteLength
  }
  return out
}

/** Parses safetensors bytes holding F32 tensors (the test's own reader). */
export function parseSafetensors(bytes: Uint8Array): Tensors {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)))
  const out: Tensors = {}
  for (const [name, e] of Object.entries<any>(header)) {
    if (name === '__metadata__') continue
    const [b, end] = e.data_offsets
    // A copy (Uint8Array's slice: a Node Buffer's slice is a view into a shared pool).
    out[name] = { shape: e.shape, data: new Float32Array(Uint8Array.prototype.slice.call(bytes, 8 + n + b, 8 + n + end).buffer) }
  }
  return out
}

let cachedMerges: [string, string][] | undefined

/**
 * Writes the fixture folder. `prefixed`: GPT2LMHeadModel's names (`transformer.h.0...` + lm_head.weight);
 * otherwise GPT2Model's bare names. `tokenizer`: 'vocab' (vocab.json + merges.txt) or 'json' (tokenizer.json).
 * `weights` replaces the tensors written (for broken-folder tests); the buffers are added either way.
 */
export function writeGpt2Folder(dir: string, opts: { prefixed?: boolean; tokenizer?: 'vocab' | 'json'; weights?: Tensors; config?: Record<string, unknown> } = {}): Tensors {
  mkdirSync(dir, { recursive: true })
  const f = FIXTURE
  const config = {
    activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], attn_pdrop: 0.1, bos_token_id: 50256,
    embd_pdrop: 0.1, eos_token_id: 50256, initializer_range: 0.02, layer_norm_epsilon: 1e-5, model_type: 'gpt2',
    n_ctx: f.nPositions, n_embd: f.nEmbd, n_head: f.nHead, n_inner: null, n_layer: f.nLayer, n_positions: f.nPositions,
    resid_pdrop: 0.1, vocab_size: f.vocabSize, ...opts.config,
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2))
  const weights = opts.weights ?? fixtureWeights()
  const prefix = opts.prefixed ? 'transformer.' : ''
  const file: Tensors = {}
  for (const [name, t] of Object.entries(weights)) file[prefix + name] = t
  // The causal-mask buffer older transformers saved with every layer (lower-triangular ones).
  const mask = new Float32Array(f.nPositions * f.nPositions)
  for (let i = 0; i < f.nPositions; i++) for (let j = 0; j <= i; j++) mask[i * f.nPositions + j] = 1
  for (let l = 0; l < f.nLayer; l++) file[`${prefix}h.${l}.attn.bias`] = { shape: [1, 1, f.nPositions, f.nPositions], data: mask }
  if (opts.prefixed && weights['wte.weight']) file['lm_head.weight'] = weights['wte.weight']
  writeFileSync(join(dir, 'model.safetensors'), safetensorsBytes(file))
  const tokens = gpt2Tokens()
  const vocab: Record<string, number> = {}
  tokens.forEach((t, i) => (vocab[t] = i))
  vocab[EOT] = tokens.length
  cachedMerges ??= gpt2Merges(tokens)
  if (opts.tokenizer === 'json') {
    const tj = {
      version: '1.0',
      added_tokens: [{ id: tokens.length, content: EOT, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges: cachedMerges.map((m) => m.join(' ')) },
    }
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj))
  } else {
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab))
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n' + cachedMerges.map((m) => m.join(' ')).join('\n') + '\n')
  }
  return weights
}

/**
 * GPT-2's forward pass in plain JS loops over the raw arrays (bare names), for one sequence of GPT-2 ids:
 * logits [ids.length][vocab] as float64. Written from GPT-2's definition (transformers' modeling_gpt2.py /
 * OpenAI's model.py): pre-LN blocks, scaled causal attention, gelu_new MLP, final ln_f, tied head.
 */
export function referenceForward(w: Tensors, ids: number[], f = FIXTURE): Float64Array[] {
  const d = f.nEmbd, H = f.nHead, dh = d / H, S = ids.length, V = w['wte.weight'].shape[0]
  const wte = w['wte.weight'].data, wpe = w['wpe.weight'].data
  let x: Float64Array[] = ids.map((id, p) => Float64Array.from({ length: d }, (_, j) => wte[id * d + j] + wpe[p * d + j]))
  const ln = (v: Float64Array, g: Float32Array, b: Float32Array) => {
    let mean = 0
    for (const a of v) mean += a
    mean /= d
    let variance = 0
    for (const a of v) variance += (a - mean) ** 2
    variance /= d
    const inv = 1 / Math.sqrt(variance + 1e-5)
    return Float64Array.from(v, (a, j) => (a - mean) * inv * g[j] + b[j])
  }
  // Conv1D: y = x · W + b, W [in, out].
  const conv = (v: Float64Array, W: { shape: number[]; data: Float32Array }, b: Float32Array) => {
    const [nIn, nOut] = W.shape
    const y = Float64Array.from(b)
    for (let i = 0; i < nIn; i++) for (let o = 0; o < nOut; o++) y[o] += v[i] * W.data[i * nOut + o]
    return y
  }
  const gelu = (a: number) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3)))
  for (let l = 0; l < f.nLayer; l++) {
    const p = (n: string) => w[`h.${l}.${n}`]
    const qkv = x.map((v) => conv(ln(v, p('ln_1.weight').data, p('ln_1.bias').data), p('attn.c_attn.weight'), p('attn.c_attn.bias').data))
    const merged = x.map(() => new Float64Array(d))
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        const scores: number[] = []
        for (let j = 0; j <= i; j++) {
          let s = 0
          for (let k = 0; k < dh; k++) s += qkv[i][h * dh + k] * qkv[j][d + h * dh + k]
          scores.push(s / Math.sqrt(dh))
        }
        const m = Math.max(...scores)
        const e = scores.map((s) => Math.exp(s - m))
        const z = e.reduce((a, b) => a + b, 0)
        for (let j = 0; j <= i; j++) for (let k = 0; k < dh; k++) merged[i][h * dh + k] += (e[j] / z) * qkv[j][2 * d + h * dh + k]
      }
    }
    x = x.map((v, i) => {
      const a = conv(merged[i], p('attn.c_proj.weight'), p('attn.c_proj.bias').data)
      return Float64Array.from(v, (t, j) => t + a[j])
    })
    x = x.map((v) => {
      const hidden = conv(ln(v, p('ln_2.weight').data, p('ln_2.bias').data), p('mlp.c_fc.weight'), p('mlp.c_fc.bias').data).map(gelu)
      const m = conv(hidden, p('mlp.c_proj.weight'), p('mlp.c_proj.bias').data)
      return Float64Array.from(v, (t, j) => t + m[j])
    })
  }
  return x.map((v) => {
    const h = ln(v, w['ln_f.weight'].data, w['ln_f.bias'].data)
    const logits = new Float64Array(V)
    for (let t = 0; t < V; t++) {
      let s = 0
      for (let j = 0; j < d; j++) s += h[j] * wte[t * d + j]
      logits[t] = s
    }
    return logits
  })
}
