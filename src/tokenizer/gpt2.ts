// GPT-2's pretrained byte-level BPE (browser-safe). Its 50,256 ranked tokens come from the npm package
// `gpt-tokenizer` (module `gpt-tokenizer/bpeRanks/r50k_base`: an array, index = rank = GPT-2 id, each entry
// the token's text or, where that is not valid UTF-8, its bytes). Nothing is downloaded at run time.
//
// The algorithm is GPT-2's: split text with GPT-2's pre-tokenizer pattern, then in each piece repeatedly merge
// the adjacent pair whose concatenated bytes have the lowest rank. Tokens are shown in GPT-2's byte-to-unicode
// form ('Ġworld'). No normalization (GPT-2 has none) except lowercasing when is_uncased; every text is in
// vocabulary, so dec(enc(x)) == norm(x) always.
//
// Ids (layout 'gpt2', the default): GPT-2's own, so a pretrained GPT-2's embedding rows line up with them:
// its tokens are 0..n-1 (n = 50,256), `<|endoftext|>` is n (50,256, as in GPT-2) and serves as both BOS and
// EOS (GPT-2 was trained with it between documents), then `<pad>` n+1 and `<unk>` n+2, which GPT-2 lacks:
// vocab_size 50,259. The three are recognised inside text. max_vocab (if not -1) keeps the first
// max_vocab - 3 GPT-2 tokens (merges of higher rank are not applied) and puts the specials after them.
// Layout 'lmp' (tokenizer files written before 0.2, which have no "layout" field): lmp's special tokens keep
// 0-3 and GPT-2 token g has id g + 4 (vocab_size 50,260); still read, never written for a new tokenizer.
import { LmpError } from '../errors.ts'
import { checkOptions, type TokenizerOptions } from './base.ts'
import { registerTokenizer, tokenizerFromJSON, type Tokenizer } from './index.ts'
import { pyLower } from './norm.ts'
import { LMP_SPECIAL_IDS, SPECIAL_SPLIT, SPECIAL_TOKENS, isSpecial, type SpecialIds } from './special.ts'

export const GPT2_PACKAGE = 'gpt-tokenizer'
export const GPT2_RANKS_MODULE = 'gpt-tokenizer/bpeRanks/r50k_base'
export const ENDOFTEXT_TK = '<|endoftext|>'
const GPT2_SPECIAL_SPLIT = /(<\|endoftext\|>|<pad>|<unk>)/

/** How ids are laid out (see the top of this file). */
export type Gpt2Layout = 'gpt2' | 'lmp'

/** GPT-2's pre-tokenizer (encoder.py), with Unicode classes. */
const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu

/** GPT-2's bytes_to_unicode: every byte gets a printable character, so tokens are readable strings. */
function byteToUnicode(): string[] {
  const map: string[] = []
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)
  let n = 0
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable(b) ? b : 256 + n++)
  return map
}
export const BYTE_CHAR = byteToUnicode()
const CHAR_BYTE = new Map(BYTE_CHAR.map((c, b) => [c, b]))

export type Gpt2Ranks = readonly (string | readonly number[])[]

const utf8 = new TextEncoder()
const latin1 = (bytes: Uint8Array | readonly number[]) => String.fromCharCode(...bytes)

export class Gpt2Tokenizer implements Tokenizer {
  readonly name = 'gpt2' as const
  readonly isUncased: boolean
  readonly maxVocab: number
  readonly minCount: number
  readonly layout: Gpt2Layout
  readonly vocabSize: number
  readonly specialIds: SpecialIds
  private readonly offset: number // id of GPT-2 token g is g + offset
  private readonly specialSplit: RegExp
  private readonly specialId = new Map<string, number>() // special token text -> id
  private readonly specialText = new Map<number, string>() // id -> special token text
  private rank = new Map<string, number>() // token bytes (one char per byte) -> GPT-2 id
  private tokenStr: string[] = [] // GPT-2 id -> 'Ġworld' form
  private cache = new Map<string, number[]>()

  constructor(ranks: Gpt2Ranks, opts: TokenizerOptions & { layout?: Gpt2Layout } = {}) {
    const o = checkOptions(opts)
    this.isUncased = o.isUncased
    this.maxVocab = o.maxVocab
    this.minCount = o.minCount
    this.layout = opts.layout ?? 'gpt2'
    if (this.layout !== 'gpt2' && this.layout !== 'lmp') throw new LmpError(`unknown gpt2 id layout '${this.layout}': must be gpt2 or lmp`)
    const nSpecial = this.layout === 'gpt2' ? 3 : SPECIAL_TOKENS.length
    const n = o.maxVocab === -1 ? ranks.length : Math.max(0, Math.min(ranks.length, o.maxVocab - nSpecial))
    for (let id = 0; id < n; id++) {
      const e = ranks[id]
      const bytes = typeof e === 'string' ? utf8.encode(e) : e
      this.rank.set(latin1(bytes), id)
      this.tokenStr[id] = Array.from(bytes, (b) => BYTE_CHAR[b]).join('')
    }
    this.vocabSize = n + nSpecial
    if (this.layout === 'gpt2') {
      this.offset = 0
      this.specialIds = Object.freeze({ bos: n, eos: n, pad: n + 1, unk: n + 2 })
      this.specialSplit = GPT2_SPECIAL_SPLIT
      ;[ENDOFTEXT_TK, '<pad>', '<unk>'].forEach((tk, i) => this.specialId.set(tk, n + i))
    } else {
      this.offset = SPECIAL_TOKENS.length
      this.specialIds = LMP_SPECIAL_IDS
      this.specialSplit = SPECIAL_SPLIT
      SPECIAL_TOKENS.forEach((tk, i) => this.specialId.set(tk, i))
    }
    for (const [tk, id] of this.specialId) this.specialText.set(id, tk)
  }

  norm(txt: string): string {
    return this.isUncased ? pyLower(txt) : txt
  }

  /** GPT-2 ids of one pre-tokenized piece; bytes with no token (only under max_vocab) give -1. */
  private bpe(piece: string): number[] {
    const hit = this.cache.get(piece)
    if (hit) return hit
    let parts = Array.from(utf8.encode(piece), (b) => String.fromCharCode(b))
    const whole = this.rank.get(parts.join(''))
    if (whole !== undefined) parts = [parts.join('')]
    while (parts.length > 1) {
      let best = -1, bestRank = Infinity
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.rank.get(parts[i] + parts[i + 1])
        if (r !== undefined && r < bestRank) { bestRank = r; best = i }
      }
      if (best < 0) break
      parts.splice(best, 2, parts[best] + parts[best + 1])
    }
    const ids = parts.map((p) => this.rank.get(p) ?? -1)
    if (this.cache.size > 1 << 18) this.cache.clear()
    this.cache.set(piece, ids)
    return ids
  }

  /** Our ids of `txt` (no BOS/EOS): special tokens by their text, then GPT-2's BPE per pre-tokenized piece. */
  private ids(txt: string): number[] {
    const out: number[] = []
    for (const seg of this.norm(txt).split(this.specialSplit)) {
      if (seg === '') continue
      const special = this.specialId.get(seg)
      if (special !== undefined) { out.push(special); continue }
      for (const m of seg.matchAll(PRETOKENIZE)) for (const g of this.bpe(m[0])) out.push(g < 0 ? this.specialIds.unk : g + this.offset)
    }
    return out
  }

  /** The text of id `id`: 'Ġworld' form for GPT-2's tokens, the special token's text, '<unk>' when out of range. */
  private token(id: number): string {
    return this.specialText.get(id) ?? this.tokenStr[id - this.offset] ?? this.specialText.get(this.specialIds.unk)!
  }

  tknz(txt: string): string[] {
    return this.ids(txt).map((id) => this.token(id))
  }

  dtknz(tks: string[]): string {
    let out = ''
    let bytes: number[] = []
    const flush = () => {
      out += new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array(bytes)) // keep a leading U+FEFF: it is text
      bytes = []
    }
    for (const tk of tks) {
      if (this.specialId.has(tk)) { flush(); out += tk; continue }
      for (const ch of tk) {
        const b = CHAR_BYTE.get(ch)
        if (b === undefined) { flush(); out += ch } else bytes.push(b)
      }
    }
    flush()
    return out
  }

  enc(txt: string): number[] {
    return [this.specialIds.bos, ...this.ids(txt), this.specialIds.eos]
  }

  dec(ids: number[], opts: { rmSpTks?: boolean } = {}): string {
    const { bos, eos, pad } = this.specialIds
    const keep = opts.rmSpTks ? ids.filter((id) => id !== bos && id !== eos && id !== pad) : ids
    return this.dtknz(keep.map((id) => this.token(id)))
  }

  /** The bytes of token `id` (GPT-2 tokens are bytes, not always whole UTF-8 characters); null for the
   * special tokens and ids outside the vocabulary. */
  tokenBytes(id: number): Uint8Array | null {
    const s = this.specialText.has(id) ? undefined : this.tokenStr[id - this.offset]
    return s === undefined ? null : Uint8Array.from(s, (ch) => CHAR_BYTE.get(ch)!)
  }

  /** Pretrained: there is nothing to learn. */
  buildVocab(_texts: Iterable<string>): void {}

  toJSON(): object {
    return {
      tknzr_name: 'gpt2', is_uncased: this.isUncased, max_vocab: this.maxVocab, min_count: this.minCount, ranks: `${GPT2_RANKS_MODULE}`,
      ...(this.layout === 'gpt2' ? { layout: 'gpt2' } : {}),
    }
  }
}

function checkRanks(mod: unknown): Gpt2Ranks {
  let ranks = mod as any
  for (let i = 0; i < 2 && ranks && !Array.isArray(ranks) && 'default' in ranks; i++) ranks = ranks.default
  if (!Array.isArray(ranks) || ranks.length < 50000 || ranks[0] !== '!') {
    throw new LmpError(`${GPT2_RANKS_MODULE} does not hold GPT-2's ranks as expected (an array of 50,256 tokens)`)
  }
  return ranks
}

/** Make `gpt2` available to createTokenizer / tokenizerFromJSON with these ranks. */
export function registerGpt2(mod: unknown): void {
  const ranks = checkRanks(mod)
  registerTokenizer('gpt2', (opts) => new Gpt2Tokenizer(ranks, opts))
}

let loading: Promise<void> | undefined

/**
 * Load GPT-2's ranks (once) and register the `gpt2` tokenizer. By default the ranks come from the npm
 * package; `loadRanks` supplies them another way (the browser's worker imports its own copy of the module,
 * built beside the page). Rejects with an LmpError when the ranks cannot be had.
 */
export function loadGpt2(loadRanks?: () => Promise<unknown>): Promise<void> {
  loading ??= (loadRanks ?? (() => import(GPT2_RANKS_MODULE as string)))().then(registerGpt2, (err) => {
    loading = undefined
    const reason = String((err as Error)?.message ?? err).split('\n')[0]
    throw new LmpError(loadRanks
      ? `the gpt2 tokenizer cannot load GPT-2's vocabulary: ${reason}`
      : `the gpt2 tokenizer needs the npm package '${GPT2_PACKAGE}' (npm install ${GPT2_PACKAGE}): ${reason}`)
  })
  return loading
}

/**
 * tokenizerFromJSON for every tokenizer kind: a `gpt2` tokenizer (lmp's JSON) first loads GPT-2's ranks (see
 * loadGpt2; `loadRanks` as there). Rejects with an LmpError on a malformed JSON or missing ranks.
 */
export async function loadTokenizerFromJSON(json: unknown, loadRanks?: () => Promise<unknown>): Promise<Tokenizer> {
  if ((json as { tknzr_name?: unknown } | null)?.tknzr_name === 'gpt2') await loadGpt2(loadRanks)
  return tokenizerFromJSON(json)
}
