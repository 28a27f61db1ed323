// The GPT-style causal decoder (`Transformer`; lmp's `Transformer-encoder` is the same model), written once
// over Ops (models/ops.ts):
//   h = Dropout(wte[x] + pos[past .. past+S))
//   pre-LN (default, GPT-2):  h += Dropout(Attn(ln_1(h)));  h += Dropout(MLP(ln_2(h)));  ... ;  h = ln_f(h)
//   post-LN (lmp):            h = ln_1(h + Dropout(Attn(h)));  h = ln_2(h + Dropout(MLP(h)));  no ln_f
//   logits = h · wteᵀ (tied)
// Parameters use GPT-2's Hugging Face names and its Conv1D layout [in, out] (so no matMul needs a
// transposed weight, and GPT-2 safetensors map one-to-one): wte, wpe, h.{i}.ln_1, h.{i}.attn.c_attn
// ([d, 3d]: q | k | v), h.{i}.attn.c_proj, h.{i}.ln_2, h.{i}.mlp.c_fc, h.{i}.mlp.c_proj, ln_f.
// Attention takes an optional key/value cache per layer ([batch, heads, past, head_dim]) and returns the
// extended one, so a generated token costs one position of attention (no re-encode). Rows whose caches hold
// different numbers of tokens can share a call when given their own positions and an attention mask.
import type { Ops } from './ops.ts'
import type { ParamSpec } from './rnn.ts'

export const TRANSFORMER_NAMES = ['Transformer', 'Transformer-encoder'] as const

export interface TransformerConfig {
  model: 'Transformer'
  vocabSize: number
  dModel: number
  nHead: number
  dFf: number
  nLyr: number
  p: number // dropout on embeddings, attention probabilities and residual branches
  maxSeqLen: number // positions the model has (learned table rows, or sinusoid rows)
  activation: 'gelu' | 'relu'
  layout: 'pre-ln' | 'post-ln'
  positions: 'learned' | 'sinusoidal'
  initLower: number
  initUpper: number
}

/** One layer's cache: key and value, each [batch, heads, length, head_dim]. */
export interface KeyValue<T> {
  key: T
  value: T
}

const LN_EPS = 1e-5

/** lmp's sinusoidal table [maxSeqLen, d]; an odd d keeps the last column's sine (lmp crashes there). */
export function sinusoidTable(maxSeqLen: number, d: number): number[] {
  const out = new Array<number>(maxSeqLen * d)
  for (let pos = 0; pos < maxSeqLen; pos++) {
    for (let j = 0; j < d; j++) {
      const i2 = j - (j % 2) // 2i
      const angle = pos * Math.exp((-i2 * Math.log(10000)) / d)
      out[pos * d + j] = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle)
    }
  }
  return out
}

export class TransformerLM {
  readonly kind = 'transformer' as const
  constructor(readonly config: TransformerConfig) {}

  get headDim() { return this.config.dModel / this.config.nHead }

  params(): Record<string, ParamSpec> {
    const c = this.config
    const d = c.dModel
    const u: [number, number] = [c.initLower, c.initUpper]
    const ones: [number, number] = [1, 1]
    const zeros: [number, number] = [0, 0]
    const p: Record<string, ParamSpec> = { 'wte.weight': { shape: [c.vocabSize, d], init: u } }
    if (c.positions === 'learned') p['wpe.weight'] = { shape: [c.maxSeqLen, d], init: u }
    for (let l = 0; l < c.nLyr; l++) {
      const pre = `h.${l}`
      p[`${pre}.ln_1.weight`] = { shape: [d], init: ones }
      p[`${pre}.ln_1.bias`] = { shape: [d], init: zeros }
      p[`${pre}.attn.c_attn.weight`] = { shape: [d, 3 * d], init: u }
      p[`${pre}.attn.c_attn.bias`] = { shape: [3 * d], init: u }
      p[`${pre}.attn.c_proj.weight`] = { shape: [d, d], init: u }
      p[`${pre}.attn.c_proj.bias`] = { shape: [d], init: u }
      p[`${pre}.ln_2.weight`] = { shape: [d], init: ones }
      p[`${pre}.ln_2.bias`] = { shape: [d], init: zeros }
      p[`${pre}.mlp.c_fc.weight`] = { shape: [d, c.dFf], init: u }
      p[`${pre}.mlp.c_fc.bias`] = { shape: [c.dFf], init: u }
      p[`${pre}.mlp.c_proj.weight`] = { shape: [c.dFf, d], init: u }
      p[`${pre}.mlp.c_proj.bias`] = { shape: [d], init: u }
    }
    if (c.layout === 'pre-ln') {
      p['ln_f.weight'] = { shape: [d], init: ones }
      p['ln_f.bias'] = { shape: [d], init: zeros }
    }
    return p
  }

  /** The cache's shape per layer, for the manifest: [batch, heads, past, head_dim]. */
  cacheShape(): (number | string)[] {
    return ['batch', this.config.nHead, 'past', this.headDim]
  }

  /**
   * Token ids [batch, S] (following `past`, when given) → logits [batch, S, vocab], the extended cache
   * (only when `past` is given: training needs none) and each layer's attention probabilities
   * [batch, heads, S, past+S]. `rows` gives each row its own positions (int [batch, S]) and which cache slots
   * hold its tokens (attention mask, int [batch, past+S], 0 for a slot that holds none): rows whose caches
   * hold different numbers of tokens then share a call; without it positions follow the cache's length.
   */
  forward<T>(o: Ops<T>, ids: T, past: KeyValue<T>[] | null, rows: { positions: T; attentionMask: T } | null = null): { logits: T; present: KeyValue<T>[]; attentions: T[] } {
    const c = this.config
    const positions = rows ? rows.positions : o.positions(ids, past ? past[0].key : null)
    const table = c.positions === 'learned' ? o.param('wpe.weight') : o.constant(sinusoidTable(c.maxSeqLen, c.dModel), [c.maxSeqLen, c.dModel])
    let h = o.dropout(o.add(o.embed(o.param('wte.weight'), ids), o.embed(table, positions)), c.p)
    const present: KeyValue<T>[] = []
    const attentions: T[] = []
    for (let l = 0; l < c.nLyr; l++) {
      const pre = `h.${l}`
      const ln = (x: T, name: string) => o.layerNorm(x, o.param(`${pre}.${name}.weight`), o.param(`${pre}.${name}.bias`), LN_EPS)
      const attn = (x: T) => {
        const out = this.attention(o, l, x, past ? past[l] : null, rows?.attentionMask ?? null)
        attentions.push(out.probs)
        if (out.present) present.push(out.present)
        return o.dropout(out.y, c.p)
      }
      const mlp = (x: T) => o.dropout(this.mlp(o, l, x), c.p)
      if (c.layout === 'pre-ln') {
        h = o.add(h, attn(ln(h, 'ln_1')))
        h = o.add(h, mlp(ln(h, 'ln_2')))
      } else {
        h = ln(o.add(h, attn(h)), 'ln_1')
        h = ln(o.add(h, mlp(h)), 'ln_2')
      }
    }
    if (c.layout === 'pre-ln') h = o.layerNorm(h, o.param('ln_f.weight'), o.param('ln_f.bias'), LN_EPS)
    const logits = o.matMul(h, o.transpose(o.param('wte.weight'), [1, 0]))
    return { logits, present, attentions }
  }

  /** Masked multi-head self-attention of layer l over x [B, S, d], after the layer's cache (if any). */
  attention<T>(o: Ops<T>, l: number, x: T, past: KeyValue<T> | null, attentionMask: T | null = null): { y: T; probs: T; present: KeyValue<T> | null } {
    const c = this.config
    const d = c.dModel
    const pre = `h.${l}.attn`
    const w = o.param(`${pre}.c_attn.weight`)
    const b = o.param(`${pre}.c_attn.bias`)
    // Slicing the small weight (not the big activation) into q | k | v: wasm's Slice copies its whole input.
    const project = (i: number) => o.add(o.matMul(x, o.sliceLast(w, i * d, d)), o.sliceLast(b, i * d, d))
    const split = (t: T) => o.reshape(t, [0, 0, c.nHead, this.headDim]) // [B, S, H, Dh]
    const q = o.transpose(split(o.scale(project(0), 1 / Math.sqrt(this.headDim))), [0, 2, 1, 3]) // [B, H, S, Dh]
    const k = o.transpose(split(project(1)), [0, 2, 1, 3])
    const v = o.transpose(split(project(2)), [0, 2, 1, 3])
    let keys = k // [B, H, past+S, Dh]
    let values = v
    let present: KeyValue<T> | null = null
    if (past) {
      keys = o.concat([past.key, k], 2)
      values = o.concat([past.value, v], 2)
      present = { key: keys, value: values }
    }
    const probs = o.softmax(o.causalMask(o.matMulT(q, keys, 4), attentionMask))
    const heads = o.matMul(o.dropout(probs, c.p), values) // [B, H, S, Dh]
    const merged = o.reshape(o.transpose(heads, [0, 2, 1, 3]), [0, 0, d])
    const y = o.add(o.matMul(merged, o.param(`${pre}.c_proj.weight`)), o.param(`${pre}.c_proj.bias`))
    return { y, probs, present }
  }

  mlp<T>(o: Ops<T>, l: number, x: T): T {
    const pre = `h.${l}.mlp`
    const hidden = o.add(o.matMul(x, o.param(`${pre}.c_fc.weight`)), o.param(`${pre}.c_fc.bias`))
    const act = this.config.activation === 'gelu' ? o.gelu(hidden) : o.relu(hidden)
    return o.add(o.matMul(act, o.param(`${pre}.c_proj.weight`)), o.param(`${pre}.c_proj.bias`))
  }
}
