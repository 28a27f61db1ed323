import t from 'tap'
import fc from 'fast-check'
import { createRequire } from 'node:module'
import { Gpt2Tokenizer, registerGpt2, loadGpt2, GPT2_RANKS_MODULE, type Gpt2Ranks } from '../../src/tokenizer/gpt2.ts'
import { createTokenizer, tokenizerFromJSON } from '../../src/tokenizer/index.ts'
import { nastyText, throwsLmp } from './helpers.ts'

/** A miniature GPT-2 rank table: the 256 bytes in GPT-2's order, then a few merges. */
function miniRanks(merges: string[]): Gpt2Ranks {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)
  const order = [...Array(256).keys()].filter(printable).concat([...Array(256).keys()].filter((b) => !printable(b)))
  return [...order.map((b) => (b < 128 ? String.fromCharCode(b) : [b])), ...merges]
}

t.test('byte-level BPE: merges by rank, GPT-2 token strings, ids offset by the 4 specials', async (t) => {
  const tk = new Gpt2Tokenizer(miniRanks(['he', ' t', ' the', 'll', 'llo', 'hello']))
  t.equal(tk.name, 'gpt2')
  t.equal(tk.vocabSize, 4 + 256 + 6)
  t.same(tk.tknz('hello the'), ['hello', 'Ġthe'])
  t.same(tk.tknz(' the  x'), ['Ġthe', 'Ġ', 'Ġ', 'x'], "GPT-2's pattern keeps the last space with the next word; ' x' has no merge")
  t.same(tk.tknz("it's"), ['i', 't', "'s"].flatMap((p) => (p === "'s" ? ["'", 's'] : [p])), "'s has no merge in the mini table")
  t.same(tk.enc('hello'), [0, 4 + 256 + 5, 1])
  t.same(tk.enc('a<unk>b<eos>'), [0, 4 + 64, 3, 4 + 65, 1, 1], 'special tokens inside text')
  t.same(tk.tknz('é'), ['Ã', '©'], 'UTF-8 bytes in byte-to-unicode form')
  t.equal(tk.dec(tk.enc('héllo wörld 😀')), '<bos>héllo wörld 😀<eos>')
  t.equal(tk.dec([0, ...tk.enc('x y').slice(1, -1), 2, 1], { rmSpTks: true }), 'x y')
  const un = new Gpt2Tokenizer(miniRanks([]), { isUncased: true })
  t.equal(un.dec(un.enc('ABC ΣΑΣ')), '<bos>abc σασ<eos>')
})

t.test('max_vocab keeps the first tokens and drops later merges', async (t) => {
  const tk = new Gpt2Tokenizer(miniRanks(['he', ' t', ' the']), { maxVocab: 4 + 256 + 1 })
  t.equal(tk.vocabSize, 261)
  t.same(tk.tknz('he the'), ['he', 'Ġ', 't', 'he'], "' t' and ' the' are past the cap")
  const tiny = new Gpt2Tokenizer(miniRanks([]), { maxVocab: 10 })
  t.equal(tiny.vocabSize, 10)
  t.same(tiny.enc('!"#$%&z'), [0, 4, 5, 6, 7, 8, 9, 3, 1], 'bytes past the cap are UNK')
})

t.test('round trip dec(enc(x)) == norm(x) for any text (property)', async (t) => {
  const tk = new Gpt2Tokenizer(miniRanks(['he', ' t', ' the', 'll', 'Ã', ' \n']))
  fc.assert(fc.property(nastyText, (x) => tk.dec(tk.enc(x).slice(1, -1)) === x), { numRuns: 500 })
  t.pass('round trip holds')
})

t.test('registration and the missing-package error', async (t) => {
  throwsLmp(t, () => registerGpt2({ default: ['x'] }), /does not hold GPT-2's ranks/)
  let installed = true
  try { createRequire(import.meta.url).resolve(GPT2_RANKS_MODULE) } catch { installed = false }
  if (!installed) {
    await t.rejects(loadGpt2(), /needs the npm package 'gpt-tokenizer'/)
    throwsLmp(t, () => createTokenizer('gpt2'), /not loaded/)
    return
  }
  await loadGpt2()
  const tk = createTokenizer('gpt2')
  t.equal(tk.vocabSize, 50260)
  // GPT-2's own ids for "Hello world" are [15496, 995]
  t.same(tk.enc('Hello world'), [0, 15496 + 4, 995 + 4, 1])
  t.same(tk.tknz('Hello world'), ['Hello', 'Ġworld'])
  const back = tokenizerFromJSON(JSON.parse(JSON.stringify(tk)))
  t.same(back.enc('Hello world'), tk.enc('Hello world'))
})
