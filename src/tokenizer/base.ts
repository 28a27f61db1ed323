// What every vocabulary-based tokenizer shares: the vocabulary, lmp's build_vocab ordering, enc/dec, JSON.
import { LmpError } from '../errors.ts'
import { normText } from './norm.ts'
import { BOS_ID, EOS_ID, LMP_SPECIAL_IDS, PAD_ID, SPECIAL_TOKENS, UNK_ID, UNK_TK, type SpecialIds } from './special.ts'

export type TokenizerName = 'character' | 'whitespace' | 'BPE' | 'gpt2'

export interface TokenizerOptions {
  isUncased?: boolean
  maxVocab?: number
  minCount?: number
  nMerge?: number
}

export function checkOptions(opts: TokenizerOptions): Required<Omit<TokenizerOptions, 'nMerge'>> {
  const isUncased = opts.isUncased ?? false
  const maxVocab = opts.maxVocab ?? -1
  const minCount = opts.minCount ?? 0
  if (typeof isUncased !== 'boolean') throw new LmpError('is_uncased must be a boolean')
  if (!Number.isInteger(maxVocab) || maxVocab < -1) throw new LmpError(`max_vocab must be an integer >= -1, got ${maxVocab}`)
  if (!Number.isInteger(minCount) || minCount < 0) throw new LmpError(`min_count must be an integer >= 0, got ${minCount}`)
  return { isUncased, maxVocab, minCount }
}

/** Counter.most_common(): descending count, ties in order of first appearance (Map keeps insertion order). */
export function mostCommon(counts: Map<string, number>): [string, number][] {
  return [...counts].sort((a, b) => b[1] - a[1]) // Array.prototype.sort is stable
}

export abstract class VocabTokenizer {
  abstract readonly name: TokenizerName
  readonly isUncased: boolean
  readonly maxVocab: number
  readonly minCount: number
  readonly specialIds: SpecialIds = LMP_SPECIAL_IDS
  tk2id = new Map<string, number>()
  id2tk: string[] = []

  constructor(opts: TokenizerOptions = {}) {
    const o = checkOptions(opts)
    this.isUncased = o.isUncased
    this.maxVocab = o.maxVocab
    this.minCount = o.minCount
    for (const tk of SPECIAL_TOKENS) this.addToken(tk)
  }

  get vocabSize(): number {
    return this.id2tk.length
  }

  protected addToken(tk: string): void {
    if (this.tk2id.has(tk)) return
    this.tk2id.set(tk, this.id2tk.length)
    this.id2tk.push(tk)
  }

  /** True when max_vocab (which counts the special tokens) leaves no room. */
  protected isFull(): boolean {
    return this.maxVocab !== -1 && this.vocabSize >= this.maxVocab
  }

  norm(txt: string): string {
    return normText(txt, this.isUncased)
  }

  abstract tknz(txt: string): string[]
  abstract dtknz(tks: string[]): string

  /** lmp's build_vocab for character/whitespace; calling it again extends the vocabulary. */
  buildVocab(texts: Iterable<string>): void {
    const counts = new Map<string, number>()
    for (const txt of texts) {
      for (const tk of this.tknz(this.norm(txt))) counts.set(tk, (counts.get(tk) ?? 0) + 1)
    }
    this.addByCount(counts)
  }

  protected addByCount(counts: Map<string, number>): void {
    for (const [tk, count] of mostCommon(counts)) {
      if (this.isFull() || count < this.minCount) break
      this.addToken(tk)
    }
  }

  enc(txt: string): number[] {
    const ids = [BOS_ID]
    for (const tk of this.tknz(txt)) ids.push(this.tk2id.get(tk) ?? UNK_ID)
    ids.push(EOS_ID)
    return ids
  }

  dec(ids: number[], opts: { rmSpTks?: boolean } = {}): string {
    const keep = opts.rmSpTks ? ids.filter((id) => id !== BOS_ID && id !== EOS_ID && id !== PAD_ID) : ids
    return this.dtknz(keep.map((id) => this.id2tk[id] ?? UNK_TK))
  }

  toJSON(): object {
    return {
      tknzr_name: this.name,
      is_uncased: this.isUncased,
      max_vocab: this.maxVocab,
      min_count: this.minCount,
      tk2id: Object.fromEntries(this.tk2id),
    }
  }

  /** Replace the vocabulary by a saved one (already validated by tokenizerFromJSON). */
  setVocab(tk2id: Record<string, number>): void {
    this.tk2id = new Map(Object.entries(tk2id))
    this.id2tk = []
    for (const [tk, id] of this.tk2id) this.id2tk[id] = tk
  }
}
