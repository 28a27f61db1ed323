// Every lmp tokenizer in Hugging Face tokenizers' format: `tokenizer.json` (format version "1.0", as the
// `tokenizers` Rust crate, its Python binding, @huggingface/tokenizers and transformers.js read it) and the
// `tokenizer_config.json` that transformers / transformers.js read beside it. Browser-safe: no node: imports.
//
// What each kind becomes (the components are the ones documented at huggingface.co/docs/tokenizers/components):
// - normalizer, for character / whitespace / BPE (lmp's norm, src/tokenizer/norm.ts): NFKC, then every run of
//   Python whitespace -> ' ' (a Regex Replace over Python's str.isspace set, not a Strip or WhitespaceSplit: those
//   use another whitespace set, e.g. JavaScript's trims U+FEFF), then one ' ' removed at each end (`\A | \z`),
//   then, when uncased, Σ -> σ and Lowercase (Python's str.lower has no final-sigma rule; JavaScript's and Rust's
//   have). gpt2 has no normalization but the lowercasing; a raw character tokenizer has none.
// - special tokens: added tokens with `normalized: true`, so they are found in the normalized text, as lmp finds
//   them (an uncased '<BOS>' or a full-width '＜bos＞' is BOS). The raw character tokenizer reads '<bos>' in a text
//   as five characters, which an added token cannot do: there its specials are only vocabulary entries, named in
//   tokenizer_config.json (bos_token ..., additional_special_tokens) so decoders can still skip them.
// - character: a Split pre-tokenizer that isolates every code point, and a WordLevel model.
// - whitespace: a Split on ' ' (after normalization the only whitespace left), and a WordLevel model.
// - BPE: the same Split, and a BPE model with end_of_word_suffix '<eow>' (lmp's end-of-word marker glued to a
//   word's last character) and lmp's merges in rank order. Replaying merges by rank as HF's BPE does (lowest rank
//   first, leftmost first) gives what lmp's segment() gives: a merge's result only takes part in later merges.
// - gpt2: GPT-2's own components (ByteLevel pre-tokenizer and decoder, BPE with GPT-2's 50,000 merges), the
//   merges recovered from the ranks (see gpt2Merges), ignore_merges as GPT-2's encoder.py/tiktoken shortcut.
// - post_processor: a TemplateProcessing that adds BOS only. HF's causal LMs add no EOS to a prompt, so HF's ids
//   with add_special_tokens are lmp's enc(x) without its last id (EOS).
//
// Where HF's decode differs from lmp's dec():
// - skip_special_tokens drops every special token, <unk> included; lmp's rmSpTks keeps <unk>.
// - transformers' clean_up_tokenization_spaces (on by default) would glue ' .' to '.': the config turns it off.
// - lmp's dec re-normalizes the joined text; the decoders here redo what can change (character: runs of ' '
//   and the ends; whitespace and BPE tokens never hold whitespace), not NFKC or lowercasing of the tokens' own
//   text (tokens were normalized when they were learned).
import { LmpError } from '../errors.ts'
import { VocabTokenizer } from './base.ts'
import { BPETokenizer, EOW_TK } from './bpe.ts'
import { CharTokenizer } from './character.ts'
import { BYTE_CHAR, Gpt2Tokenizer } from './gpt2.ts'
import type { Tokenizer } from './index.ts'
import { PY_WHITESPACE } from './norm.ts'
import type { SpecialIds } from './special.ts'

type Json = Record<string, unknown>


/** The text of each special token, e.g. { bos: '<bos>', ... } or { bos: '<|endoftext|>', ... }. */
function specialTexts(tk: Tokenizer): { bos: string; eos: string; pad: string; unk: string } {
  const ids = tk.specialIds
  const text = (id: number) => {
    const s = tk instanceof VocabTokenizer ? tk.id2tk[id] : tk.dec([id])
    if (!s) throw new LmpError(`tokenizer has no text for special token id ${id}`)
    return s
  }
  return { bos: text(ids.bos), eos: text(ids.eos), pad: text(ids.pad), unk: text(ids.unk) }
}

/** Python's whitespace class as a regex character class of literal characters (read alike by Oniguruma and JS). */
const PY_WS_CLASS = `[${PY_WHITESPACE.replace(/\\u([0-9A-Fa-f]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))}]+`

const replace = (regex: string, content: string): Json => ({ type: 'Replace', pattern: { Regex: regex }, content })
const replaceString = (s: string, content: string): Json => ({ type: 'Replace', pattern: { String: s }, content })
const sequence = (normalizers: Json[]): Json | null => (normalizers.length ? { type: 'Sequence', normalizers } : null)
/** Python's str.lower (pyLower in norm.ts). */
const lowercase = (): Json[] => [replaceString('\u03A3', '\u03C3'), { type: 'Lowercase' }]

/** lmp's normText: NFKC, whitespace runs -> ' ', strip, lowercase when uncased. */
function lmpNormalizer(isUncased: boolean): Json {
  return sequence([{ type: 'NFKC' }, replace(PY_WS_CLASS, ' '), replace('\\A | \\z', ''), ...(isUncased ? lowercase() : [])])!
}

/** Adds BOS in front of a text; a pair (unused by causal LMs) gets BOS in front of each, as Llama's does. */
function bosTemplate(bos: string, bosId: number): Json {
  const sp = (type_id: number) => ({ SpecialToken: { id: bos, type_id } })
  return {
    type: 'TemplateProcessing',
    single: [sp(0), { Sequence: { id: 'A', type_id: 0 } }],
    pair: [sp(0), { Sequence: { id: 'A', type_id: 0 } }, sp(1), { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  }
}

function addedTokens(tk: Tokenizer): Json[] {
  const ids = tk.specialIds
  const texts = specialTexts(tk)
  const byId = new Map<number, string>()
  for (const k of ['bos', 'eos', 'pad', 'unk'] as const) byId.set(ids[k], texts[k])
  return [...byId].sort((a, b) => a[0] - b[0]).map(([id, content]) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true,
  }))
}

/** The pre-tokenizer that splits normalized text into lmp's words (only ' ' is left of whitespace). */
const wordSplit = (): Json => ({ type: 'Split', pattern: { Regex: ' ' }, behavior: 'Removed', invert: false })

function vocabOf(tk: VocabTokenizer): Record<string, number> {
  return Object.fromEntries(tk.tk2id)
}

/**
 * GPT-2's merges recovered from its ranked tokens (`tokens[r]` is the token of rank r, in byte-to-unicode form):
 * a token's merge is the pair that byte-level BPE over its bytes, using only lower ranks, ends with (exactly
 * two parts). Single-byte tokens have none. This is how merges are recovered from a tiktoken rank table.
 * @returns [left, right] per multi-byte token, in rank order. Throws LmpError if a token cannot be reached.
 */
export function gpt2Merges(tokens: readonly string[]): [string, string][] {
  const rank = new Map<string, number>()
  tokens.forEach((s, r) => { if (!rank.has(s)) rank.set(s, r) })
  const merges: [string, string][] = []
  tokens.forEach((token, r) => {
    let parts = Array.from(token)
    if (parts.length < 2) return
    for (;;) {
      let best = -1, bestRank = r
      for (let i = 0; i + 1 < parts.length; i++) {
        const pr = rank.get(parts[i] + parts[i + 1])
        if (pr !== undefined && pr < bestRank) { bestRank = pr; best = i }
      }
      if (best < 0) break
      parts.splice(best, 2, parts[best] + parts[best + 1])
    }
    if (parts.length !== 2) throw new LmpError(`GPT-2 token ${r} (${JSON.stringify(token)}) is not one merge of lower-ranked tokens`)
    merges.push([parts[0], parts[1]])
  })
  return merges
}

function gpt2Json(tk: Gpt2Tokenizer): Json {
  const sp = specialTexts(tk)
  const vocab: Record<string, number> = {}
  const ranked: string[] = [] // GPT-2 tokens in id order = rank order, in both id layouts
  const specialIds = new Set(Object.values(tk.specialIds))
  for (let id = 0; id < tk.vocabSize; id++) {
    const bytes = specialIds.has(id) ? null : tk.tokenBytes(id)
    if (!bytes) continue
    const s = Array.from(bytes, (b) => BYTE_CHAR[b]).join('')
    vocab[s] = id
    ranked.push(s)
  }
  const added = addedTokens(tk)
  for (const a of added) vocab[a.content as string] = a.id as number
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: tk.isUncased ? sequence(lowercase()) : null,
    pre_tokenizer: byteLevel,
    post_processor: bosTemplate(sp.bos, tk.specialIds.bos),
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: sp.unk, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges: gpt2Merges(ranked),
    },
  }
}

/**
 * The tokenizer in Hugging Face tokenizers' `tokenizer.json` format (version "1.0"): normalizer, pre_tokenizer,
 * model (WordLevel for character and whitespace, BPE for BPE and gpt2), post_processor (adds BOS), decoder,
 * added_tokens (the specials). Encoding a text with it gives `tk.enc(text)` without the final EOS (with
 * add_special_tokens) or `tk.enc(text).slice(1, -1)` (without). The gpt2 one holds GPT-2's whole vocabulary and
 * its 50,000 merges (about 1.5 MB as JSON). Throws LmpError for a tokenizer of no known kind.
 */
export function hfTokenizerJSON(tk: Tokenizer): Json {
  if (tk instanceof Gpt2Tokenizer) return gpt2Json(tk)
  if (!(tk instanceof VocabTokenizer)) throw new LmpError(`no Hugging Face tokenizer.json for tokenizer '${tk.name}'`)
  const sp = specialTexts(tk)
  const raw = tk instanceof CharTokenizer && tk.isRaw
  const wordLevel = { type: 'WordLevel', vocab: vocabOf(tk), unk_token: sp.unk }
  const common = { version: '1.0', truncation: null, padding: null, post_processor: bosTemplate(sp.bos, tk.specialIds.bos) }
  if (tk instanceof CharTokenizer) {
    return {
      ...common,
      added_tokens: raw ? [] : addedTokens(tk),
      normalizer: raw ? null : lmpNormalizer(tk.isUncased),
      pre_tokenizer: { type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false },
      model: wordLevel,
      // lmp's dec: join, then (not raw) whitespace runs -> ' ' and strip
      decoder: raw
        ? { type: 'Fuse' }
        : { type: 'Sequence', decoders: [{ type: 'Fuse' }, replace(' {2,}', ' '), { type: 'Strip', content: ' ', start: 1, stop: 1 }] },
    }
  }
  if (tk instanceof BPETokenizer) {
    const seen = new Set<string>()
    const merges = tk.merges.filter(([a, b]) => { // lmp keeps a repeated merge's first rank; HF would keep its last
      const k = a + '\u0000' + b
      return seen.has(k) ? false : (seen.add(k), true)
    })
    return {
      ...common,
      added_tokens: addedTokens(tk),
      normalizer: lmpNormalizer(tk.isUncased),
      pre_tokenizer: wordSplit(),
      model: {
        type: 'BPE', dropout: null, unk_token: sp.unk, continuing_subword_prefix: null, end_of_word_suffix: EOW_TK,
        fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: vocabOf(tk), merges,
      },
      // lmp's dtknz: a token ending in '<eow>' ends a word, and a special token stands alone as a word
      decoder: {
        type: 'Sequence',
        decoders: [...new Set(Object.values(sp))].map((s) => replaceString(s, s + EOW_TK)).concat({ type: 'BPEDecoder', suffix: EOW_TK }),
      },
    }
  }
  // whitespace: no decoder, so the tokens are joined with ' ' (tokenizers' default), as lmp's dtknz does
  return { ...common, added_tokens: addedTokens(tk), normalizer: lmpNormalizer(tk.isUncased), pre_tokenizer: wordSplit(), model: wordLevel, decoder: null }
}

/**
 * `tokenizer_config.json` for the tokenizer: its special tokens' texts, add_bos_token true / add_eos_token false
 * (transformers.js' text-generation pipeline then encodes prompts with BOS, as lmp's models were trained),
 * clean_up_tokenization_spaces false, tokenizer_class ('GPT2Tokenizer' for gpt2, else 'PreTrainedTokenizerFast',
 * the generic class for a tokenizer.json; transformers.js drops the 'Fast'), and model_max_length (the model's
 * context length in tokens) when given.
 */
export function hfTokenizerConfig(tk: Tokenizer, modelMaxLength?: number): Json {
  if (modelMaxLength !== undefined && (!Number.isInteger(modelMaxLength) || modelMaxLength < 1)) {
    throw new LmpError(`model_max_length must be an integer >= 1, got ${modelMaxLength}`)
  }
  const sp = specialTexts(tk)
  const raw = tk instanceof CharTokenizer && tk.isRaw
  return {
    tokenizer_class: tk.name === 'gpt2' ? 'GPT2Tokenizer' : 'PreTrainedTokenizerFast',
    bos_token: sp.bos,
    eos_token: sp.eos,
    pad_token: sp.pad,
    unk_token: sp.unk,
    ...(raw ? { additional_special_tokens: [...new Set(Object.values(sp))] } : {}),
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    ...(tk.name === 'gpt2' ? { add_prefix_space: false } : {}),
    ...(modelMaxLength !== undefined ? { model_max_length: modelMaxLength } : {}),
  }
}
