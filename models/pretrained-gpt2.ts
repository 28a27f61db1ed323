// Start from a pretrained GPT-2 (`lmp train-model Transformer --init-from DIR`): DIR is a Hugging Face GPT-2
// folder as `huggingface-cli download gpt2` leaves it:
//   config.json        GPT2Config (transformers/models/gpt2/configuration_gpt2.py): n_layer, n_head, n_embd,
//                      n_positions (n_ctx in old files), n_inner (null: 4·n_embd), vocab_size,
//                      layer_norm_epsilon, activation_function
//   model.safetensors  GPT2Model's or GPT2LMHeadModel's state dict: names with or without `transformer.`,
//                      Conv1D weights [in, out] (our layout already), `lm_head.weight` (tied to wte) optional,
//                      the causal-mask buffers `attn.bias` / `attn.masked_bias` present in older files
//   tokenizer.json, or vocab.json + merges.txt: must be GPT-2's own vocabulary
// Our Transformer is GPT-2's architecture (models/transformer.ts: pre-LN, final ln_f, learned positions, tied
// head, GELU with the tanh approximation = GPT-2's `gelu_new`, LayerNorm epsilon 1e-5), so the weights map
// one-to-one; what does not match is refused in one line naming the file and the field or tensor.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { LmpError } from '../src/errors.ts'
import { readSafetensors } from './safetensors.ts'
import { TransformerLM } from './transformer.ts'
import { GPT2_PACKAGE, GPT2_RANKS_MODULE, type Gpt2Ranks } from '../src/tokenizer/gpt2.ts'

/** GPT-2's vocabulary: 50,256 byte-level BPE tokens and `<|endoftext|>` (id 50,256). */
export const GPT2_VOCAB_SIZE = 50257
export const GPT2_EOT = '<|endoftext|>'
const LN_EPS = 1e-5 // models/transformer.ts
// Hugging Face's names for GELU's tanh approximation (transformers/activations.py ACT2FN): all one formula.
const TANH_GELU = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast']

/** The architecture a GPT2Config describes, in our model config's terms. */
export interface Gpt2Architecture {
  nLyr: number
  nHead: number
  dModel: number
  dFf: number
  /** n_positions: rows of the learned position table, the longest context. */
  maxSeqLen: number
  activation: 'gelu' | 'relu'
  layout: 'pre-ln'
  positions: 'learned'
}

/** Reads and checks DIR/config.json (GPT2Config) → our architecture options. One-line LmpError on any mismatch. */
export function readGpt2Config(dir: string): Gpt2Architecture {
  const path = join(dir, 'config.json')
  if (!existsSync(dir)) throw new LmpError(`--init-from ${dir}: no such folder`)
  if (!statSync(dir).isDirectory()) throw new LmpError(`--init-from ${dir}: a file, not a folder (give the folder that holds config.json and model.safetensors)`)
  if (!existsSync(path)) throw new LmpError(`--init-from ${dir}: no config.json (a Hugging Face GPT-2 folder holds config.json and model.safetensors)`)
  let c: any
  try {
    c = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new LmpError(`${path} is not JSON (${(e as Error).message.split('\n')[0]})`)
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new LmpError(`${path} is not a GPT2Config (not a JSON object)`)
  if (c.model_type !== undefined && c.model_type !== 'gpt2') throw new LmpError(`${path}: model_type '${c.model_type}'; only GPT-2 ('gpt2') checkpoints load`)
  const int = (key: string, fallback?: unknown) => {
    const v = c[key] ?? fallback
    if (!Number.isInteger(v) || v < 1) throw new LmpError(`${path}: ${key} must be an integer >= 1, got ${JSON.stringify(v)}`)
    return v as number
  }
  const nEmbd = int('n_embd')
  const nHead = int('n_head')
  if (nEmbd % nHead !== 0) throw new LmpError(`${path}: n_embd (${nEmbd}) is not a multiple of n_head (${nHead})`)
  const vocab = int('vocab_size')
  if (vocab !== GPT2_VOCAB_SIZE) throw new LmpError(`${path}: vocab_size ${vocab}; only GPT-2's own vocabulary (${GPT2_VOCAB_SIZE} tokens) is supported`)
  const eps = c.layer_norm_epsilon ?? LN_EPS
  if (eps !== LN_EPS) throw new LmpError(`${path}: layer_norm_epsilon ${eps}; the Transformer uses GPT-2's ${LN_EPS}`)
  const act = c.activation_function ?? 'gelu_new'
  const activation = TANH_GELU.includes(act) ? 'gelu' : act === 'relu' ? 'relu' : null
  if (!activation) throw new LmpError(`${path}: activation_function '${act}' is not supported (${TANH_GELU.join(', ')} or relu)`)
  // Variants of GPT-2's attention that change its arithmetic (GPT2Attention): refused, not silently ignored.
  if (c.scale_attn_weights === false) throw new LmpError(`${path}: scale_attn_weights false is not supported`)
  if (c.scale_attn_by_inverse_layer_idx === true) throw new LmpError(`${path}: scale_attn_by_inverse_layer_idx is not supported`)
  if (c.add_cross_attention === true) throw new LmpError(`${path}: add_cross_attention is not supported (a decoder-only GPT-2 is)`)
  if (c.tie_word_embeddings === false) throw new LmpError(`${path}: tie_word_embeddings false; the Transformer's head is tied to wte`)
  return {
    nLyr: int('n_layer'), nHead, dModel: nEmbd,
    dFf: c.n_inner === null || c.n_inner === undefined ? 4 * nEmbd : int('n_inner'),
    maxSeqLen: int('n_positions', c.n_ctx), activation, layout: 'pre-ln', positions: 'learned',
  }
}

/**
 * The weights of DIR/model.safetensors under our names (GPT-2's, `transformer.` dropped), checked against
 * `arch` with wte [50,257, d] as GPT-2 has it; then `vocabSize - 50,257` rows are appended to wte for the
 * special tokens GPT-2 lacks (`<pad>`, `<unk>`: our gpt2 tokenizer's ids 50,257 and 50,258), each the mean of
 * GPT-2's rows. Why the mean: the head is tied, so a new token's logit is h·mean(wte) = the mean of the other
 * logits — the new tokens start at an ordinary probability instead of an arbitrary one (a zero row gives
 * logit 0, far above GPT-2's typical logits; a random row anything), and GPT-2's distribution over its own
 * tokens is unchanged. Buffers (`attn.bias`, `attn.masked_bias`) are skipped; `lm_head.weight` must equal wte.
 * A missing, truncated or non-finite file, a missing, extra or misshapen tensor: one-line LmpError.
 */
export async function readGpt2Weights(dir: string, arch: Gpt2Architecture, vocabSize: number): Promise<Record<string, Float32Array>> {
  const path = join(dir, 'model.safetensors')
  if (!existsSync(path)) throw new LmpError(`--init-from ${dir}: no model.safetensors (only the safetensors format is read, not pytorch_model.bin)`)
  const { tensors } = await readSafetensors(path)
  const model = new TransformerLM({ model: 'Transformer', vocabSize: GPT2_VOCAB_SIZE, ...arch, p: 0, initLower: 0, initUpper: 0 })
  const specs = model.params()
  const found: Record<string, { shape: number[]; dtype: string; data: Float32Array }> = {}
  let lmHead: Float32Array | null = null
  for (const [full, t] of Object.entries(tensors)) {
    const name = full.startsWith('transformer.') ? full.slice('transformer.'.length) : full
    if (/^h\.\d+\.attn\.(bias|masked_bias)$/.test(name)) continue // causal-mask buffers, not weights
    if (name === 'lm_head.weight') {
      lmHead = t.data as Float32Array
      continue
    }
    if (!(name in specs)) throw new LmpError(`${path}: unexpected tensor '${full}' (not a GPT-2 weight of this config.json)`)
    if (name in found) throw new LmpError(`${path}: tensor '${name}' appears twice (with and without 'transformer.')`)
    found[name] = { shape: t.shape, dtype: t.dtype, data: t.data as Float32Array }
  }
  const out: Record<string, Float32Array> = {}
  for (const [name, spec] of Object.entries(specs)) {
    const t = found[name]
    if (!t) throw new LmpError(`${path}: missing tensor '${name}' (n_layer ${arch.nLyr} in config.json)`)
    if (t.dtype !== 'F32' || t.shape.join('x') !== spec.shape.join('x')) {
      throw new LmpError(`${path}: tensor '${name}' is ${t.dtype} [${t.shape}], config.json needs F32 [${spec.shape}]`)
    }
    out[name] = t.data
  }
  if (lmHead) {
    const wte = out['wte.weight']
    if (lmHead.length !== wte.length || lmHead.some((x, i) => x !== wte[i])) {
      throw new LmpError(`${path}: lm_head.weight differs from wte.weight; only GPT-2's tied head is supported`)
    }
  }
  out['wte.weight'] = withMeanRows(out['wte.weight'], arch.dModel, vocabSize)
  return out
}

/** table [rows, d] extended to [vocabSize, d], the new rows each the mean of the old ones (float64 sums). */
function withMeanRows(table: Float32Array, d: number, vocabSize: number): Float32Array {
  const rows = table.length / d
  if (vocabSize < rows) throw new LmpError(`the tokenizer has ${vocabSize} ids, fewer than GPT-2's ${rows}`)
  const mean = new Float64Array(d)
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) mean[j] += table[r * d + j]
  const out = new Float32Array(vocabSize * d)
  out.set(table)
  for (let r = rows; r < vocabSize; r++) for (let j = 0; j < d; j++) out[r * d + j] = mean[j] / rows
  return out
}

/** GPT-2's ranks from the npm package the gpt2 tokenizer uses (src/tokenizer/gpt2.ts). */
export async function gpt2Ranks(): Promise<Gpt2Ranks> {
  let mod: any
  try {
    mod = await import(GPT2_RANKS_MODULE as string)
  } catch (e) {
    throw new LmpError(`--init-from needs the npm package '${GPT2_PACKAGE}' for GPT-2's vocabulary: ${String((e as Error).message).split('\n')[0]}`)
  }
  while (mod && !Array.isArray(mod) && 'default' in mod) mod = mod.default
  return mod
}

/** GPT-2's tokens in Hugging Face's byte-to-unicode form ('Ġworld'), index = id, from gpt-tokenizer's ranks. */
export function gpt2TokenStrings(ranks: Gpt2Ranks): string[] {
  const byteChar: string[] = []
  let n = 0
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)
    byteChar[b] = String.fromCodePoint(printable ? b : 256 + n++)
  }
  const utf8 = new TextEncoder()
  return ranks.map((e) => Array.from(typeof e === 'string' ? utf8.encode(e) : e, (b) => byteChar[b]).join(''))
}

/**
 * Checks that DIR's tokenizer is GPT-2's own: tokenizer.json (Hugging Face tokenizers: model.vocab,
 * model.merges as "a b" strings or [a, b] pairs), else vocab.json + merges.txt (GPT-2's original files).
 * The vocabulary must map exactly GPT-2's 50,256 tokens to their ids and `<|endoftext|>` to 50,256; merge i
 * must join two tokens into token 256 + i (GPT-2's vocabulary is its 256 bytes, then one token per merge, in
 * merge order: the ranks our gpt2 tokenizer applies). Anything else: one-line LmpError.
 */
export function checkGpt2Tokenizer(dir: string, ranks: Gpt2Ranks): void {
  const tokenizerJson = join(dir, 'tokenizer.json')
  const vocabJson = join(dir, 'vocab.json')
  const mergesTxt = join(dir, 'merges.txt')
  let vocab: unknown
  let merges: unknown[]
  let where: string
  if (existsSync(tokenizerJson)) {
    const t = readJsonFile(tokenizerJson)
    vocab = t?.model?.vocab
    merges = t?.model?.merges
    where = tokenizerJson
    if (t?.model?.type !== undefined && t.model.type !== 'BPE') throw new LmpError(`${where}: model.type '${t.model.type}'; only GPT-2's own vocabulary (BPE) is supported`)
    if (!Array.isArray(merges)) throw new LmpError(`${where}: no model.merges list`)
  } else if (existsSync(vocabJson) && existsSync(mergesTxt)) {
    vocab = readJsonFile(vocabJson)
    where = `${vocabJson} and merges.txt`
    merges = readFileSync(mergesTxt, 'utf8').split('\n').filter((line, i) => line !== '' && !(i === 0 && line.startsWith('#version')))
  } else {
    throw new LmpError(`--init-from ${dir}: no tokenizer (tokenizer.json, or vocab.json and merges.txt)`)
  }
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) throw new LmpError(`${where}: no vocabulary object`)
  const v = vocab as Record<string, unknown>
  const tokens = gpt2TokenStrings(ranks)
  const differ = () => new LmpError(`${where}: not GPT-2's vocabulary; only GPT-2's own vocabulary is supported`)
  if (Object.keys(v).length !== tokens.length + 1 || v[GPT2_EOT] !== tokens.length) throw differ()
  for (let id = 0; id < tokens.length; id++) if (v[tokens[id]] !== id) throw differ()
  if (merges.length !== tokens.length - 256) throw differ()
  for (let i = 0; i < merges.length; i++) {
    const m = merges[i]
    const pair = typeof m === 'string' ? m.split(' ') : m
    if (!Array.isArray(pair) || pair.length !== 2 || pair[0] + pair[1] !== tokens[256 + i] || !Object.hasOwn(v, pair[0]) || !Object.hasOwn(v, pair[1])) throw differ()
  }
}

function readJsonFile(path: string): any {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new LmpError(`${path} is not JSON (${(e as Error).message.split('\n')[0]})`)
  }
}
