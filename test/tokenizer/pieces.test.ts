// Token pieces (src/tokenizer/pieces.ts): each token's own text, for every tokenizer kind. They join to the
// decoded text for any input, a space token reads ' ', and a gpt2 token that ends inside a character reads ''
// while the token that completes it carries the whole character.
import t from 'tap'
import fc from 'fast-check'
import { demoSamples } from '../../src/data/demo.ts'
import { createTokenizer, TOKENIZER_NAMES, type Tokenizer } from '../../src/tokenizer/index.ts'
import { loadGpt2Sync } from '../../src/tokenizer/io.ts'
import { tokenPieces, tokenStrings, tokenTextDecoder, tokenTexts, topLogprobsObject } from '../../src/tokenizer/pieces.ts'
import type { Gpt2Tokenizer } from '../../src/tokenizer/gpt2.ts'
import { nastyText } from './helpers.ts'

loadGpt2Sync()
const tokenizers: Tokenizer[] = TOKENIZER_NAMES.map((name) => {
  const tk = createTokenizer(name)
  tk.buildVocab(demoSamples('train'))
  return tk
})
const gpt2 = tokenizers[TOKENIZER_NAMES.indexOf('gpt2')]
const char = tokenizers[TOKENIZER_NAMES.indexOf('character')]

t.test('pieces join to the decoded text, one per id, for every tokenizer kind (property)', async (t) => {
  const text = fc.oneof(nastyText, fc.string({ unit: 'grapheme', maxLength: 30 }), fc.constantFrom('If you add 3 to 4 you get 7 .', ' 🎉 🎉 🎉 and', 'héllo  wörld'))
  for (const tk of tokenizers) {
    fc.assert(fc.property(text, (x) => {
      const ids = tk.enc(x)
      const pieces = tokenPieces(tk, ids)
      // A literal '<bos>' in the text is encoded as BOS, and dec() re-normalizes the white space around a removed
      // special; token texts keep each token's own text, so such texts are left out here.
      fc.pre(!/<(bos|eos|pad)>/.test(x))
      // A BPE word-final token carries its space after it: BPE's pieces end in one space more than dec().
      const joined = pieces.join(''), decoded = tk.dec(ids, { rmSpTks: true })
      return pieces.length === ids.length && (joined === decoded || (tk.name === 'BPE' && joined === `${decoded} `))
    }), { numRuns: 300 })
  }
  t.pass('pieces join to dec(ids, { rmSpTks: true }) (BPE: and its last space)')
})

t.test("a space token reads ' '; a character split over gpt2 tokens goes to the token that completes it", async (t) => {
  const ids = char.enc('you get')
  t.same(tokenPieces(char, ids), ['', 'y', 'o', 'u', ' ', 'g', 'e', 't', ''])
  const party = gpt2.enc(' 🎉 🎉')
  t.same(gpt2.tknz(' 🎉 🎉'), ['ĠðŁ', 'İ', 'ī', 'ĠðŁ', 'İ', 'ī'], "GPT-2 splits the emoji's 4 bytes over 3 tokens")
  const pieces = tokenPieces(gpt2, party)
  t.same(pieces, ['', ' ', '', '🎉', ' ', '', '🎉', ''], 'the space with its token, the emoji with the token that completes it')
  t.equal(pieces.join(''), ' 🎉 🎉')
})

// Each token's own text, per tokenizer kind.
const corpus = ['if you add 3 to 4 you get 7 .', 'to top it off']

t.test('character: a space is " "; specials add nothing; UNK reads <unk>', async (t) => {
  const tk = createTokenizer('character')
  tk.buildVocab(corpus)
  const ids = tk.enc('you get 7 Z')
  t.same(tokenTexts(tk, ids), ['', 'y', 'o', 'u', ' ', 'g', 'e', 't', ' ', '7', ' ', '<unk>', ''])
  t.same(tokenStrings(tk, ids)!.at(0), '<bos>')
  t.same(tokenStrings(tk, ids)!.at(-1), '<eos>')
})

t.test('whitespace: a word carries the space before it, after the first word', async (t) => {
  const tk = createTokenizer('whitespace')
  tk.buildVocab(corpus)
  t.same(tokenTexts(tk, tk.enc('you get   7')), ['', 'you', ' get', ' 7', ''])
})

t.test('BPE: a word-final token carries its space after it, apart from the same piece inside a word', async (t) => {
  const tk = createTokenizer('BPE', { nMerge: 50 })
  tk.buildVocab(corpus)
  const texts = tokenTexts(tk, tk.enc('to top'))!
  t.equal(texts.join(''), 'to top ')
  t.equal(texts[1], 'to ', "'to<eow>'")
  t.ok(texts[2].startsWith('to') && texts[2] !== 'to ', `'to' inside 'top' reads ${JSON.stringify(texts[2])}`)
})

t.test('gpt2: bytes are held until they complete a character; none is lost', async (t) => {
  const tk = createTokenizer('gpt2') as Gpt2Tokenizer
  for (const text of [' 🎉 🎉 and', 'naïve 漢字 🙂!', '\u{1F468}\u200D\u{1F469}']) {
    const ids = tk.enc(text)
    const texts = tokenTexts(tk, ids)!
    t.equal(texts.join(''), text, JSON.stringify(texts))
    t.notOk(texts.some((x) => x.includes('\uFFFD')), 'no replacement character')
  }
  // Bytes that never complete a character read as U+FFFD at the end, as dec reads them.
  const first = tk.enc('🎉').slice(1, 2)
  t.equal(tokenTexts(tk, first)!.join(''), tk.dec(first))
  const d = tokenTextDecoder(tk)!
  d.push(first[0])
  t.ok(d.label(first[0]).startsWith('bytes:\\x'), d.label(first[0]))
  t.equal(d.label(tk.enc('a')[1]), 'bytes:\\x61', 'held bytes before it: spelled as bytes')
})

t.test('topLogprobsObject: the chosen token under its text; alternatives that print alike under distinct keys', async (t) => {
  const tk = createTokenizer('gpt2') as Gpt2Tokenizer
  const partial: number[] = []
  for (let v = 0; partial.length < 3; v++) {
    const b = tk.tokenBytes(v)
    if (b && b.length === 1 && b[0] >= 0xe0 && b[0] <= 0xef) partial.push(v)
  }
  const d = tokenTextDecoder(tk)!
  const obj = topLogprobsObject(d, { tokenId: partial[1], text: '', logprob: -1.5 }, partial.map((tokenId, i) => ({ tokenId, logprob: -1 - i / 2 })).concat([{ tokenId: tk.specialIds.eos, logprob: -3 }]))
  t.equal(Object.keys(obj).length, 4)
  t.equal(obj[''], -1.5, 'the chosen token, with its own value')
  t.equal(obj['<|endoftext|>'], -3, 'EOS under its name')
})
