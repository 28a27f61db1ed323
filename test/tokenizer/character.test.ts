import t from 'tap'
import fc from 'fast-check'
import {
  BOS_ID, EOS_ID, PAD_ID, UNK_ID, SPECIAL_TOKENS, createTokenizer, padToMax, encBatch, tokenizerFromJSON,
} from '../../src/tokenizer/index.ts'
import { throwsLmp, nastyText, manyDistinctChars } from './helpers.ts'

t.test('special token ids are lmp\'s', async (t) => {
  t.same([BOS_ID, EOS_ID, PAD_ID, UNK_ID], [0, 1, 2, 3])
  t.same(SPECIAL_TOKENS, ['<bos>', '<eos>', '<pad>', '<unk>'])
  const tk = createTokenizer('character')
  t.equal(tk.vocabSize, 4)
  t.equal(tk.name, 'character')
})

t.test('norm: NFKC, Python whitespace, strip, lowercase', async (t) => {
  const tk = createTokenizer('character')
  t.equal(tk.norm('ﬁ①㎏'), 'fi1kg')
  // Python's \s has U+001C-U+001F and U+0085 and not U+FEFF; JS's is the other way round.
  t.equal(tk.norm('\u001c a\u0085\u001f\tb \u3000'), 'a b')
  t.equal(tk.norm('\ufeffa\ufeff'), '\ufeffa\ufeff')
  t.equal(tk.norm('  A\u00a0\u2028\u2029B  '), 'A B')
  t.equal(tk.norm('ABC'), 'ABC')
  const un = createTokenizer('character', { isUncased: true })
  t.equal(un.norm('ABC Ⅻ'), 'abc xii')
  // Python's lower() has no final-sigma rule
  t.equal(un.norm('ΟΔΟΣ'), 'οδοσ')
})

t.test('tknz / dtknz', async (t) => {
  const tk = createTokenizer('character')
  t.same(tk.tknz('a  b   c'), ['a', ' ', 'b', ' ', 'c'])
  t.same(tk.tknz('<bos>a<unk>bc<eos><pad><pad>'), ['<bos>', 'a', '<unk>', 'b', 'c', '<eos>', '<pad>', '<pad>'])
  t.same(tk.tknz('<bo<eos>>'), ['<', 'b', 'o', '<eos>', '>'])
  t.same(tk.tknz('😀é'), ['😀', 'é'], 'one token per code point (astral plane, NFKC composes)')
  t.same(tk.tknz(''), [])
  t.equal(tk.dtknz(['a', ' ', ' ', 'b', ' ']), 'a b')
  t.equal(tk.dtknz(['<bos>', 'a', '<eos>']), '<bos>a<eos>')
})

t.test('build_vocab: count order, ties by first appearance, enc/dec', async (t) => {
  const tk = createTokenizer('character')
  tk.buildVocab(['A', 'a'])
  t.same(Object.fromEntries(Object.entries((tk.toJSON() as any).tk2id)), { '<bos>': 0, '<eos>': 1, '<pad>': 2, '<unk>': 3, A: 4, a: 5 })
  t.same(tk.enc('aA'), [0, 5, 4, 1])
  t.same(tk.enc('bB'), [0, 3, 3, 1])
  t.same(tk.enc(''), [0, 1])
  t.equal(tk.vocabSize, 6)

  const tk2 = createTokenizer('character')
  tk2.buildVocab(['abcb', 'cc'])
  // counts: c 3, b 2, a 1
  t.same(tk2.enc('abc'), [0, 6, 5, 4, 1])
  t.equal(tk2.dec([0, 6, 5, 4, 1]), '<bos>abc<eos>')
  t.equal(tk2.dec([0, 6, 5, 4, 1, 2, 2], { rmSpTks: true }), 'abc')
  t.equal(tk2.dec([0, 6, 3, 99, 1], { rmSpTks: true }), 'a<unk><unk>', 'UNK kept, unknown ids read as <unk>')
  tk2.buildVocab(['z'])
  t.equal(tk2.enc('z')[1], 7, 'build_vocab again extends the vocabulary')
})

t.test('max_vocab counts the specials; min_count', async (t) => {
  const tk = createTokenizer('character', { maxVocab: 10 })
  tk.buildVocab([manyDistinctChars()])
  t.equal(tk.vocabSize, 10)
  const tk2 = createTokenizer('character', { minCount: 2 })
  tk2.buildVocab(['aab', 'cc'])
  t.equal(tk2.vocabSize, 6)
  t.same(tk2.enc('abc'), [0, 4, 3, 5, 1])
  const sp = createTokenizer('character')
  sp.buildVocab(['<pad><pad>x'])
  t.equal(sp.vocabSize, 5, 'special tokens in text are not added twice')
})

t.test('option validation', async (t) => {
  throwsLmp(t, () => createTokenizer('character', { maxVocab: -2 }))
  throwsLmp(t, () => createTokenizer('character', { minCount: -1 }))
  t.throws(() => createTokenizer('nope'), /must be one of character, whitespace, BPE/)
})

t.test('pad_to_max and batch encoding', async (t) => {
  t.same(padToMax(5, [0, 3, 1]), [0, 3, 1, 2, 2])
  t.same(padToMax(2, [0, 3, 1]), [0, 3, 1], 'never truncates')
  throwsLmp(t, () => padToMax(0, []))
  const tk = createTokenizer('character')
  tk.buildVocab(['ab'])
  t.same(encBatch(tk, ['ab', 'abab', ''], 4), [[0, 4, 5, 1], [0, 4, 5, 4], [0, 1, 2, 2]])
})

t.test('JSON round trip and malformed JSON', async (t) => {
  const tk = createTokenizer('character', { isUncased: true, maxVocab: 50, minCount: 1 })
  tk.buildVocab(['Hello world'])
  const json = JSON.parse(JSON.stringify(tk.toJSON()))
  t.match(json, { tknzr_name: 'character', is_uncased: true, max_vocab: 50, min_count: 1 })
  const back = tokenizerFromJSON(json)
  t.equal(back.name, 'character')
  t.equal(back.vocabSize, tk.vocabSize)
  t.same(back.enc('HELLO, world'), tk.enc('HELLO, world'))
  t.same(back.toJSON(), tk.toJSON())
  throwsLmp(t, () => tokenizerFromJSON(null))
  throwsLmp(t, () => tokenizerFromJSON({ ...json, tknzr_name: 'x' }))
  t.throws(() => tokenizerFromJSON({ ...json, tk2id: { '<bos>': 1, '<eos>': 0, '<pad>': 2, '<unk>': 3 } }), /<bos> must have id 0/)
  throwsLmp(t, () => tokenizerFromJSON({ ...json, tk2id: { ...json.tk2id, q: 999 } }))
  throwsLmp(t, () => tokenizerFromJSON({ ...json, max_vocab: 'big' }))
})

t.test('round trip dec(enc(x)) == norm(x) for in-vocabulary text (property)', async (t) => {
  for (const isUncased of [false, true]) {
    fc.assert(
      fc.property(nastyText, (x) => {
        const tk = createTokenizer('character', { isUncased })
        tk.buildVocab([x])
        const ids = tk.enc(x)
        if (tk.dec(ids.slice(1, -1)) !== tk.norm(x)) return false
        // rm_sp_tks drops BOS/EOS/PAD ids, which only differ when the text itself holds those tokens
        return /<(bos|eos|pad)>/.test(tk.norm(x)) || tk.dec(ids, { rmSpTks: true }) === tk.norm(x)
      }),
      { numRuns: 500 },
    )
  }
  t.pass('round trip holds')
})
