// Token pieces (src/tokenizer/pieces.ts): each token's own text, for every tokenizer kind. They join to the
// decoded text for any input, a space token reads ' ', and a gpt2 token that ends inside a character reads ''
// while the token that completes it carries the whole character.
import t from 'tap'
import fc from 'fast-check'
import { demoSamples } from '../../src/data/demo.ts'
import { createTokenizer, TOKENIZER_NAMES, type Tokenizer } from '../../src/tokenizer/index.ts'
import { loadGpt2Sync } from '../../src/tokenizer/io.ts'
import { tokenPieces } from '../../src/tokenizer/pieces.ts'
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
      return pieces.length === ids.length && pieces.join('') === tk.dec(ids, { rmSpTks: true })
    }), { numRuns: 300 })
  }
  t.pass('pieces join to dec(ids, { rmSpTks: true })')
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
