import t from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { createTokenizer, tokenizerFromJSON, BPETokenizer } from '../../src/tokenizer/index.ts'
import { wordSymbols } from '../../src/tokenizer/bpe.ts'
import { nastyText, manyDistinctChars, throwsLmp } from './helpers.ts'

const bpe = (opts = {}) => createTokenizer('BPE', opts) as BPETokenizer
const vocab = (tk: BPETokenizer) => (tk.toJSON() as any).tk2id

t.test("lmp's end-of-word convention", async (t) => {
  t.same(wordSymbols('low'), ['l', 'o', 'w<eow>'])
  t.same(wordSymbols('a😀'), ['a', '😀<eow>'], 'code points, not UTF-16 units')
  const tk = bpe({ nMerge: 1 })
  t.equal(tk.name, 'BPE')
  t.equal(tk.nMerge, 1)
  t.equal(bpe().nMerge, 10000, "lmp's default n_merge")
  throwsLmp(t, () => bpe({ nMerge: 0 }))
})

t.test('learning: characters by count, merges by pair count, documented tie rule', async (t) => {
  const tk = bpe({ nMerge: 3 })
  tk.buildVocab(['ab ab ab abc'])
  // characters: a 4, b<eow> 3, b 1, c<eow> 1; pairs: (a,b<eow>) 3, (a,b) 1, (b,c<eow>) 1 -> the tie goes to
  // the smaller left symbol, 'a' < 'b'
  t.same(tk.merges, [['a', 'b<eow>'], ['a', 'b'], ['ab', 'c<eow>']])
  t.same(vocab(tk), { '<bos>': 0, '<eos>': 1, '<pad>': 2, '<unk>': 3, a: 4, 'b<eow>': 5, b: 6, 'c<eow>': 7, 'ab<eow>': 8, ab: 9, 'abc<eow>': 10 })
  t.same(tk.enc('ab abc'), [0, 8, 10, 1])
  t.same(tk.tknz('abab'), ['ab', 'ab<eow>'], 'replays merges by rank (lmp would be greedy longest-prefix)')
  t.same(tk.tknz('ba'), ['b', 'a<eow>'])
  t.same(tk.enc('ba'), [0, 6, 3, 1], "'a<eow>' never occurred: UNK")
  t.same(tk.tknz('ab<unk>x'), ['ab<eow>', '<unk>', 'x<eow>'])
})

t.test('back-to-back repeats of a pair all merge (lmp skipped every other one)', async (t) => {
  const tk = bpe({ nMerge: 1 })
  tk.buildVocab(['ababab ababab'])
  t.same(tk.merges, [['a', 'b']])
  t.same(tk.tknz('ababab'), ['ab', 'ab', 'a', 'b<eow>'])
  const tk2 = bpe({ nMerge: 1 })
  tk2.buildVocab(['aaaa'])
  t.same(tk2.tknz('aaaa'), ['aa', 'a', 'a<eow>'], 'overlapping occurrences merge left to right')
})

t.test('max_vocab and min_count', async (t) => {
  const big = bpe({ maxVocab: 10 })
  big.buildVocab([[...manyDistinctChars()].join(' ')])
  t.equal(big.vocabSize, 10)
  t.same(big.merges, [], 'characters filled the vocabulary: no merges')
  const capped = bpe({ maxVocab: 10 })
  capped.buildVocab(['ab ab ab abc'])
  t.equal(capped.vocabSize, 10)
  t.same(capped.merges, [['a', 'b<eow>'], ['a', 'b']])
  const mc = bpe({ minCount: 2 })
  mc.buildVocab(['ab ab ab abc'])
  t.same(mc.merges, [['a', 'b<eow>']], 'merging stops when the best pair occurs fewer than min_count times')
  t.same(Object.keys(vocab(mc)), ['<bos>', '<eos>', '<pad>', '<unk>', 'a', 'b<eow>', 'ab<eow>'])
})

t.test('dec, rm_sp_tks, JSON round trip with merges', async (t) => {
  const tk = bpe({ nMerge: 50, isUncased: true })
  tk.buildVocab(['The quick brown fox', 'the lazy dog'])
  const ids = tk.enc('the quick dog')
  t.equal(tk.dec(ids), '<bos> the quick dog <eos>')
  t.equal(tk.dec([...ids, 2, 2], { rmSpTks: true }), 'the quick dog')
  const json = JSON.parse(JSON.stringify(tk))
  t.match(json, { tknzr_name: 'BPE', is_uncased: true, n_merge: 50 })
  t.same(json.merges, tk.merges)
  const back = tokenizerFromJSON(json) as BPETokenizer
  t.same(back.merges, tk.merges)
  t.same(back.enc('the lazy brown quick fox'), tk.enc('the lazy brown quick fox'))
  throwsLmp(t, () => tokenizerFromJSON({ ...json, merges: [['a']] }), /merges/)
  throwsLmp(t, () => tokenizerFromJSON({ ...json, merges: [['zz', 'qq']] }), /no vocabulary entry/)
  throwsLmp(t, () => tokenizerFromJSON({ ...json, n_merge: 0 }), /n_merge/)
})

/** The textbook trainer: recount every pair after every merge. The incremental one must agree with it. */
function naiveMerges(texts: string[], nMerge: number, minCount: number): [string, string][] {
  const freq = new Map<string, number>()
  for (const txt of texts) for (const w of txt.split(' ').filter(Boolean)) freq.set(w, (freq.get(w) ?? 0) + 1)
  let words = [...freq].map(([w, f]) => ({ syms: wordSymbols(w), f }))
  const merges: [string, string][] = []
  while (merges.length < nMerge) {
    const count = new Map<string, [number, string, string]>()
    for (const { syms, f } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = syms[i] + '\u0000' + syms[i + 1]
        const c = count.get(k) ?? [0, syms[i], syms[i + 1]]
        c[0] += f
        count.set(k, c)
      }
    }
    let best: [number, string, string] | undefined
    for (const c of count.values()) {
      if (!best || c[0] > best[0] || (c[0] === best[0] && (c[1] < best[1] || (c[1] === best[1] && c[2] < best[2])))) best = c
    }
    if (!best || best[0] < minCount) break
    const [, a, b] = best
    merges.push([a, b])
    words = words.map(({ syms, f }) => {
      const out: string[] = []
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) { out.push(a + b); i++ } else out.push(syms[i])
      }
      return { syms: out, f }
    })
  }
  return merges
}

t.test('the incremental trainer equals the textbook one (property)', async (t) => {
  const corpus = fc.array(fc.stringMatching(/^[abc]{1,7}( [abc]{1,7}){0,5}$/), { minLength: 1, maxLength: 6 })
  fc.assert(
    fc.property(corpus, fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 3 }), (texts, nMerge, minCount) => {
      const tk = bpe({ nMerge, minCount })
      const seg = tk.learnFrom(texts)
      const want = naiveMerges(texts, nMerge, minCount)
      if (JSON.stringify(tk.merges) !== JSON.stringify(want)) return false
      // and encoding replays them: every training word gets its training segmentation
      for (const [w, s] of seg) if (JSON.stringify(tk.segment(w)) !== JSON.stringify(s)) return false
      return true
    }),
    { numRuns: 300 },
  )
  t.pass('same merges, same segmentations')
})

t.test('round trip dec(enc(x)) == norm(x) for in-vocabulary text (property)', async (t) => {
  for (const isUncased of [false, true]) {
    fc.assert(
      fc.property(nastyText.filter((x) => !x.includes('<eow>')), fc.integer({ min: 1, max: 40 }), (x, nMerge) => {
        const tk = bpe({ isUncased, nMerge })
        tk.buildVocab([x])
        const want = tk.norm(tk.norm(x).replace(/(<bos>|<eos>|<pad>|<unk>)/g, ' $1 '))
        return tk.dec(tk.enc(x).slice(1, -1)) === want
      }),
      { numRuns: 300 },
    )
  }
  t.pass('round trip holds')
})

t.test('tiny-shakespeare, 1,000 merges: encoding replays the learned merges exactly', async (t) => {
  const text = readFileSync(new URL('../../../shared/data/tinyshakespeare/input.txt', import.meta.url), 'utf8')
  const train = text.slice(0, 1003854)
  const tk = bpe({ nMerge: 1000 })
  const seg = tk.learnFrom(train.split('\n'))
  t.equal(tk.merges.length, 1000)
  t.equal(new Set(tk.merges.map((m) => m.join('\u0000'))).size, 1000, 'no pair is merged twice')
  let mismatches = 0
  for (const [w, s] of seg) if (tk.segment(w).join('\u0000') !== s.join('\u0000')) mismatches++
  t.equal(mismatches, 0, `all ${seg.size} training words re-derive their training segmentation`)
  const valid = text.slice(1003854)
  const ids = tk.enc(valid)
  const unk = ids.filter((id) => id === 3).length
  t.equal(unk, 0, 'no unknown characters on the valid split')
  t.comment(`tokens per character: train ${(tk.enc(train).length / train.length).toFixed(4)}, valid ${(ids.length / valid.length).toFixed(4)}`)
  t.ok(ids.length / valid.length < 0.4, 'merges compress the text')
  t.equal(tk.dec(ids, { rmSpTks: true }), tk.norm(valid), 'the valid split round-trips')
})
