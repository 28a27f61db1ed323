// Tokenizers with lmp's semantics (browser-safe: no node: imports).
// character / whitespace / BPE are lmp's three; gpt2 is GPT-2's pretrained byte-level BPE (see gpt2.ts).
import { LmpError } from '../errors.ts'
import { VocabTokenizer, type TokenizerName, type TokenizerOptions } from './base.ts'
import { CharTokenizer } from './character.ts'
import { WhitespaceTokenizer } from './whitespace.ts'
import { BPETokenizer } from './bpe.ts'
import { BOS_ID, EOS_ID, IGNORE_INDEX, LMP_SPECIAL_IDS, PAD_ID, SPECIAL_TOKENS, UNK_ID, neverGenerated, type SpecialIds } from './special.ts'

export { BOS_ID, EOS_ID, PAD_ID, UNK_ID, SPECIAL_TOKENS, IGNORE_INDEX, LMP_SPECIAL_IDS, neverGenerated }
export type { SpecialIds }
export type { TokenizerName, TokenizerOptions }
export { normText, pyLower, PY_WHITESPACE } from './norm.ts'
export { CharTokenizer, WhitespaceTokenizer, BPETokenizer }

export interface Tokenizer {
  readonly name: TokenizerName
  readonly vocabSize: number
  /** Its special tokens' ids: lmp's 0-3 for lmp's tokenizers, GPT-2's own for gpt2 (see SpecialIds). */
  readonly specialIds: SpecialIds
  norm(txt: string): string
  tknz(txt: string): string[]
  dtknz(tks: string[]): string
  /** [BOS, ...ids (unknown -> UNK), EOS]; no truncation, no padding. */
  enc(txt: string): number[]
  /** rmSpTks drops BOS, EOS and PAD (never UNK); unknown ids read as <unk>. */
  dec(ids: number[], opts?: { rmSpTks?: boolean }): string
  buildVocab(texts: Iterable<string>): void
  /** What lmp's tokenizer JSON (lmp_tokenizer.json) holds. */
  toJSON(): object
}

export const TOKENIZER_NAMES: readonly TokenizerName[] = ['character', 'whitespace', 'BPE', 'gpt2']

type Factory = (opts: TokenizerOptions) => Tokenizer
const factories: Partial<Record<TokenizerName, Factory>> = {
  character: (o) => new CharTokenizer(o as TokenizerOptions & { isRaw?: boolean }),
  whitespace: (o) => new WhitespaceTokenizer(o),
  BPE: (o) => new BPETokenizer(o),
}

/** Used by gpt2.ts / bpe.ts to register themselves without index.ts importing optional packages. */
export function registerTokenizer(name: TokenizerName, factory: Factory): void {
  factories[name] = factory
}

export function createTokenizer(name: string, opts: TokenizerOptions = {}): Tokenizer {
  const factory = factories[name as TokenizerName]
  if (!factory) {
    if (name === 'gpt2') throw new LmpError("the gpt2 tokenizer is not loaded: call 'await loadGpt2()' (src/tokenizer/gpt2.ts) first")
    throw new LmpError(`unknown tokenizer '${name}': must be one of ${TOKENIZER_NAMES.join(', ')}`)
  }
  return factory(opts)
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Rebuild a tokenizer from its toJSON() form; throws LmpError on a malformed one. */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  const bad = (why: string) => new LmpError(`malformed tokenizer JSON: ${why}`)
  if (!isObj(json)) throw bad('not an object')
  const name = json.tknzr_name
  if (typeof name !== 'string' || !TOKENIZER_NAMES.includes(name as TokenizerName)) {
    throw bad(`tknzr_name must be one of ${TOKENIZER_NAMES.join(', ')}`)
  }
  let tk: Tokenizer
  try {
    tk = createTokenizer(name, {
      isUncased: json.is_uncased as boolean,
      maxVocab: json.max_vocab as number,
      minCount: json.min_count as number,
      nMerge: (json.n_merge as number | undefined) ?? undefined,
      ...(json.is_raw !== undefined ? { isRaw: json.is_raw as boolean } : {}),
      // gpt2 files written before 0.2 have no layout: theirs is lmp's (gpt2.ts)
      ...(name === 'gpt2' ? { layout: json.layout ?? 'lmp' } : {}),
    } as TokenizerOptions)
  } catch (err) {
    if (err instanceof LmpError && err.message.startsWith('the gpt2')) throw err
    throw bad((err as Error).message)
  }
  if (tk instanceof VocabTokenizer) {
    const tk2id = json.tk2id
    if (!isObj(tk2id)) throw bad('tk2id must be an object')
    const ids = Object.values(tk2id)
    const seen = new Set<number>()
    for (const id of ids) {
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= ids.length || seen.has(id as number)) {
        throw bad('tk2id ids must be distinct integers 0..n-1')
      }
      seen.add(id as number)
    }
    SPECIAL_TOKENS.forEach((sp, i) => {
      if (tk2id[sp] !== i) throw bad(`${sp} must have id ${i}`)
    })
    tk.setVocab(tk2id as Record<string, number>)
    const restore = (tk as { restore?: (json: Record<string, unknown>) => void }).restore
    if (restore) {
      try { restore.call(tk, json) } catch (err) { throw bad((err as Error).message) }
    }
  }
  return tk
}

/** lmp's pad_to_max: append `pad` (lmp's PAD id unless given) until the length is maxSeqLen; never truncates. */
export function padToMax(maxSeqLen: number, ids: number[], pad = PAD_ID): number[] {
  if (!Number.isInteger(maxSeqLen) || maxSeqLen < 1) throw new LmpError(`max_seq_len must be an integer >= 1, got ${maxSeqLen}`)
  const out = ids.slice()
  while (out.length < maxSeqLen) out.push(pad)
  return out
}

/** Batch encoding: enc() each text, truncate to maxSeqLen (keeping the start), then pad to maxSeqLen with its PAD. */
export function encBatch(tknzr: Tokenizer, txts: string[], maxSeqLen: number): number[][] {
  return txts.map((txt) => padToMax(maxSeqLen, tknzr.enc(txt).slice(0, maxSeqLen), tknzr.specialIds.pad))
}
