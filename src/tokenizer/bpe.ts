// BPE with lmp's conventions (words split as in the whitespace tokenizer, '<eow>' glued to a word's last
// character, options n_merge / max_vocab / min_count / is_uncased), but the standard algorithm:
// - learning: repeatedly merge the most frequent adjacent pair (counted over word types, weighted by word
//   frequency); ties go to the pair whose left symbol, then right symbol, is smallest in JavaScript string
//   order (UTF-16 code units). Every occurrence of the pair in a word is merged, left to right.
// - encoding: replay the learned merges by rank (lowest rank first), which reproduces exactly the
//   segmentation learning gave every training word. lmp's greedy longest-prefix encoding and its skipping
//   of back-to-back repeats are defects we do not copy (LMP-REFERENCE section 9).
// Vocabulary: the 4 specials, then characters by frequency (ties: first appearance), then each merge's
// symbol in merge order. max_vocab (specials included) stops both; if the characters fill it, no merges.
import { LmpError } from '../errors.ts'
import { mostCommon, VocabTokenizer, type TokenizerOptions } from './base.ts'
import { BOS_ID, EOS_ID, UNK_ID, isSpecial } from './special.ts'
import { splitWords } from './words.ts'

export const EOW_TK = '<eow>'

/** A word as symbols: its code points, the last one carrying '<eow>' ('low' -> ['l', 'o', 'w<eow>']). */
export function wordSymbols(word: string): string[] {
  const cps = Array.from(word)
  cps[cps.length - 1] += EOW_TK
  return cps
}

/** A max-heap of [count, left, right, key] with lazy deletion (stale entries are skipped when popped). */
class PairHeap {
  private items: [number, string, string, number][] = []
  private before(a: [number, string, string, number], b: [number, string, string, number]): boolean {
    if (a[0] !== b[0]) return a[0] > b[0]
    if (a[1] !== b[1]) return a[1] < b[1]
    return a[2] < b[2]
  }
  push(item: [number, string, string, number]): void {
    const h = this.items
    h.push(item)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.before(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }
  pop(): [number, string, string, number] | undefined {
    const h = this.items
    if (h.length === 0) return undefined
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1, r = l + 1
        let m = i
        if (l < h.length && this.before(h[l], h[m])) m = l
        if (r < h.length && this.before(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
}

export class BPETokenizer extends VocabTokenizer {
  readonly name = 'BPE' as const
  readonly nMerge: number
  /** learned merges, in rank order */
  merges: [string, string][] = []
  private rank = new Map<string, number>() // 'left right' (joined by '\u0000') -> rank
  private cache = new Map<string, string[]>() // word -> its tokens
  private idCache = new Map<string, number[]>() // word -> its ids

  constructor(opts: TokenizerOptions = {}) {
    super(opts)
    const nMerge = opts.nMerge ?? 10000
    if (!Number.isInteger(nMerge) || nMerge < 1) throw new LmpError(`n_merge must be an integer >= 1, got ${nMerge}`)
    this.nMerge = nMerge
  }

  private setMerges(merges: [string, string][]): void {
    this.merges = merges
    this.rank = new Map()
    merges.forEach(([a, b], i) => {
      const key = a + '\u0000' + b
      if (!this.rank.has(key)) this.rank.set(key, i)
    })
    this.cache.clear()
    this.idCache.clear()
  }

  buildVocab(texts: Iterable<string>): void {
    this.learnFrom(texts)
  }

  /** buildVocab, returning each training word's final segmentation (what encoding must reproduce). */
  learnFrom(texts: Iterable<string>): Map<string, string[]> {
    // 1. word frequencies (special tokens are not words)
    const wordFreq = new Map<string, number>()
    for (const txt of texts) {
      for (const w of splitWords(this.norm(txt))) {
        if (!isSpecial(w)) wordFreq.set(w, (wordFreq.get(w) ?? 0) + 1)
      }
    }
    try {
      return this.learn(wordFreq)
    } finally {
      this.cache.clear() // the vocabulary (and maybe the merges) changed
      this.idCache.clear()
    }
  }

  /** Learn characters and merges from word frequencies; returns each word's final training segmentation. */
  learn(wordFreq: Map<string, number>): Map<string, string[]> {
    // 2. characters by frequency, weighted by word occurrences
    const words: string[][] = []
    const freqs: number[] = []
    const charCount = new Map<string, number>()
    for (const [w, f] of wordFreq) {
      const syms = wordSymbols(w)
      words.push(syms)
      freqs.push(f)
      for (const s of syms) charCount.set(s, (charCount.get(s) ?? 0) + f)
    }
    this.addByCount(charCount)
    const segmentation = () => new Map([...wordFreq.keys()].map((w, i) => [w, seqs ? seqs[i].map((id) => syms[id]) : words[i]]))
    let seqs: number[][] | undefined
    if (this.isFull()) return segmentation()
    // 3. merges; symbols are interned as ints so a pair is one number key
    const symId = new Map<string, number>()
    const syms: string[] = []
    const intern = (s: string) => {
      let id = symId.get(s)
      if (id === undefined) { id = syms.length; symId.set(s, id); syms.push(s) }
      return id
    }
    seqs = words.map((w) => w.map(intern))
    const SHIFT = 2 ** 26 // symbols per run stay far below this
    const pairCount = new Map<number, number>()
    const pairWords = new Map<number, Set<number>>()
    const heap = new PairHeap()
    const addPairs = (wi: number, sign: 1 | -1) => {
      const seq = seqs![wi]
      for (let i = 0; i + 1 < seq.length; i++) {
        const key = seq[i] * SHIFT + seq[i + 1]
        pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freqs[wi])
        if (sign === 1) {
          let set = pairWords.get(key)
          if (!set) pairWords.set(key, (set = new Set()))
          set.add(wi)
        }
      }
    }
    const touched = new Set<number>()
    const pushTouched = () => {
      for (const key of touched) {
        const c = pairCount.get(key)!
        if (c > 0) heap.push([c, syms[Math.floor(key / SHIFT)], syms[key % SHIFT], key])
        else pairCount.delete(key)
      }
      touched.clear()
    }
    seqs.forEach((seq, wi) => {
      addPairs(wi, 1)
      for (let i = 0; i + 1 < seq.length; i++) touched.add(seq[i] * SHIFT + seq[i + 1])
    })
    pushTouched()
    const merges: [string, string][] = [...this.merges]
    for (let m = 0; m < this.nMerge && !this.isFull(); ) {
      const top = heap.pop()
      if (!top) break
      const [count, a, b, key] = top
      if (pairCount.get(key) !== count) continue // stale entry
      if (count < this.minCount) break
      const aId = Math.floor(key / SHIFT), bId = key % SHIFT
      const merged = intern(a + b)
      for (const wi of pairWords.get(key) ?? []) {
        const seq = seqs[wi]
        let has = false
        for (let i = 0; i + 1 < seq.length; i++) if (seq[i] === aId && seq[i + 1] === bId) { has = true; break }
        if (!has) continue
        addPairs(wi, -1)
        for (let i = 0; i + 1 < seq.length; i++) touched.add(seq[i] * SHIFT + seq[i + 1])
        const out: number[] = []
        for (let i = 0; i < seq.length; i++) {
          if (i + 1 < seq.length && seq[i] === aId && seq[i + 1] === bId) { out.push(merged); i++ }
          else out.push(seq[i])
        }
        seqs[wi] = out
        addPairs(wi, 1)
        for (let i = 0; i + 1 < out.length; i++) touched.add(out[i] * SHIFT + out[i + 1])
      }
      pairCount.delete(key)
      pairWords.delete(key)
      touched.delete(key)
      pushTouched()
      merges.push([a, b])
      this.addToken(a + b)
      m++
    }
    this.setMerges(merges)
    return segmentation()
  }

  /** The tokens of one (non-special) word: its symbols with the merges replayed by rank. */
  segment(word: string): string[] {
    const hit = this.cache.get(word)
    if (hit) return hit
    let seq = wordSymbols(word)
    for (;;) {
      let best = -1, bestRank = Infinity
      for (let i = 0; i + 1 < seq.length; i++) {
        const r = this.rank.get(seq[i] + '\u0000' + seq[i + 1])
        if (r !== undefined && r < bestRank) { bestRank = r; best = i }
      }
      if (best < 0) break
      const [a, b] = this.merges[bestRank]
      const out: string[] = []
      for (let i = 0; i < seq.length; i++) {
        if (i + 1 < seq.length && seq[i] === a && seq[i + 1] === b) { out.push(a + b); i++ }
        else out.push(seq[i])
      }
      seq = out
    }
    if (this.cache.size > 1 << 20) this.cache.clear() // bound memory on huge open vocabularies
    this.cache.set(word, seq)
    return seq
  }

  enc(txt: string): number[] {
    const ids = [BOS_ID]
    for (const w of splitWords(this.norm(txt))) {
      if (isSpecial(w)) { ids.push(this.tk2id.get(w)!); continue }
      let wordIds = this.idCache.get(w)
      if (!wordIds) {
        wordIds = this.segment(w).map((tk) => this.tk2id.get(tk) ?? UNK_ID)
        if (this.idCache.size > 1 << 20) this.idCache.clear()
        this.idCache.set(w, wordIds)
      }
      for (const id of wordIds) ids.push(id)
    }
    ids.push(EOS_ID)
    return ids
  }

  tknz(txt: string): string[] {
    const tks: string[] = []
    for (const w of splitWords(this.norm(txt))) {
      if (isSpecial(w)) tks.push(w)
      else for (const s of this.segment(w)) tks.push(s)
    }
    return tks
  }

  /** A token ending in '<eow>' ends a word; special tokens stand alone. */
  dtknz(tks: string[]): string {
    let out = ''
    for (const tk of tks) {
      if (tk.endsWith(EOW_TK)) out += tk.slice(0, -EOW_TK.length) + ' '
      else if (isSpecial(tk)) out += tk + ' '
      else out += tk
    }
    return this.norm(out)
  }

  toJSON(): object {
    return { ...super.toJSON(), n_merge: this.nMerge, merges: this.merges.map(([a, b]) => [a, b]) }
  }

  /** Called by tokenizerFromJSON after the vocabulary is set. */
  restore(json: Record<string, unknown>): void {
    const merges = json.merges ?? []
    if (!Array.isArray(merges) || !merges.every((m) => Array.isArray(m) && m.length === 2 && m.every((s) => typeof s === 'string'))) {
      throw new Error('merges must be a list of [left, right] string pairs')
    }
    for (const [a, b] of merges as [string, string][]) {
      if (!this.tk2id.has(a + b)) throw new Error(`merge '${a}' + '${b}' has no vocabulary entry`)
    }
    this.setMerges(merges as [string, string][])
  }
}
