import t from 'tap'
import fc from 'fast-check'
import { createTokenizer, tokenizerFromJSON } from '../../src/tokenizer/index.ts'
import { nastyText, manyDistinctChars, throwsLmp } from './helpers.ts'

t.test('tknz splits on whitespace runs and around special tokens', async (t) => {
  const tk = createTokenizer('whitespace')
  t.equal(tk.name, 'whitespace')
  t.same(tk.tknz('A<unk>b  c'), ['A', '<unk>', 'b', 'c'])
  t.same(tk.tknz(' a\u0085b\u001cc\ufeff '), ['a', 'b', 'c\ufeff'], "Python's whitespace set")
  t.same(tk.tknz('<bos><bos>x<eos>'), ['<bos>', '<bos>', 'x', '<eos>'])
  t.same(tk.tknz(''), [])
  t.equal(tk.dtknz(['a', 'b', '<unk>', 'c']), 'a b <unk> c')
})

t.test("lmp's build_vocab example, uncased", async (t) => {
  const tk = createTokenizer('whitespace', { isUncased: true })
  tk.buildVocab(['The cat', 'the dog', 'a cat'])
  t.match((tk.toJSON() as any).tk2id, { the: 4, cat: 5, dog: 6, a: 7 })
  t.equal(tk.vocabSize, 8)
  t.same(tk.enc('the bird'), [0, 4, 3, 1])
  t.same(tk.enc('THE  CAT'), [0, 4, 5, 1])
  t.equal(tk.dec([0, 4, 5, 3, 2, 1]), '<bos> the cat <unk> <pad> <eos>')
  t.equal(tk.dec([0, 4, 5, 3, 2, 1], { rmSpTks: true }), 'the cat <unk>')
})

t.test('max_vocab and min_count', async (t) => {
  const tk = createTokenizer('whitespace', { maxVocab: 10 })
  tk.buildVocab([[...manyDistinctChars()].join(' ')])
  t.equal(tk.vocabSize, 10)
  const mc = createTokenizer('whitespace', { minCount: 2 })
  mc.buildVocab(['x y x', 'z y'])
  t.equal(mc.vocabSize, 6)
  t.same(mc.enc('y x z'), [0, 5, 4, 3, 1], 'ties keep first appearance: x before y')
  throwsLmp(t, () => createTokenizer('whitespace', { maxVocab: 1.5 }))
})

t.test('JSON round trip', async (t) => {
  const tk = createTokenizer('whitespace', { isUncased: true })
  tk.buildVocab(['Hello there', 'hello world'])
  const back = tokenizerFromJSON(JSON.parse(JSON.stringify(tk)))
  t.same(back.enc('hello world there x'), tk.enc('hello world there x'))
  t.same(back.toJSON(), tk.toJSON())
})

t.test('round trip dec(enc(x)) == norm(x) for in-vocabulary text (property)', async (t) => {
  for (const isUncased of [false, true]) {
    fc.assert(
      fc.property(nastyText, (x) => {
        const tk = createTokenizer('whitespace', { isUncased })
        tk.buildVocab([x])
        // special tokens always stand as their own words, so a glued one comes back spaced
        const want = tk.norm(tk.norm(x).replace(/(<bos>|<eos>|<pad>|<unk>)/g, ' $1 '))
        return tk.dec(tk.enc(x).slice(1, -1)) === want
      }),
      { numRuns: 500 },
    )
  }
  t.pass('round trip holds')
})
