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

t.test("byte-level BPE: merges by rank, GPT-2 token strings, GPT-2's own ids with <|endoftext|> as BOS and EOS", async (t) => {
  const tk = new Gpt2Tokenizer(miniRanks(['he', ' t', ' the', 'll', 'llo', 'hello']))
  const n = 256 + 6 // GPT-2 tokens: <|endoftext|> comes right after them (50,256 for the real table)
  t.equal(tk.name, 'gpt2')
  t.equal(tk.vocabSize, n + 3)
  t.same(tk.specialIds, { bos: n, eos: n, pad: n + 1, unk: n + 2 })
  t.same(tk.tknz('hello the'), ['hello', 'Ġthe'])
  t.same(tk.tknz(' the  x'), ['Ġthe', 'Ġ', 'Ġ', 'x'], "GPT-2's pattern keeps the last space with the next word; ' x' has no merge")
  t.same(tk.tknz("it's"), ['i', 't', "'s"].flatMap((p) => (p === "'s" ? ["'", 's'] : [p])), "'s has no merge in the mini table")
  t.same(tk.enc('hello'), [n, 256 + 5, n])
  t.same(tk.enc('a<unk>b<|endoftext|>c<pad>'), [n, 64, n + 2, 65, n, 66, n + 1, n], 'its special tokens inside text')
  t.same(tk.enc('<eos>').slice(1, -1), tk.enc('<').slice(1, -1).concat(tk.enc('eos>').slice(1, -1)), "lmp's <eos> is plain text here")
  t.same(tk.tknz('é'), ['Ã', '©'], 'UTF-8 bytes in byte-to-unicode form')
  t.equal(tk.dec(tk.enc('héllo wörld 😀')), '<|endoftext|>héllo wörld 😀<|endoftext|>')
  t.equal(tk.dec([n, ...tk.enc('x y').slice(1, -1), n + 1, n], { rmSpTks: true }), 'x y')
  t.equal(tk.dec([n + 2]), '<unk>')
  t.equal(tk.tokenBytes(n), null, 'special tokens have no bytes')
  const un = new Gpt2Tokenizer(miniRanks([]), { isUncased: true })
  t.equal(un.dec(un.enc('ABC ΣΑΣ')), '<|endoftext|>abc σασ<|endoftext|>')
})

t.test("the layout of tokenizer files written before 0.2: lmp's specials at 0-3, GPT-2 ids shifted by 4", async (t) => {
  const tk = new Gpt2Tokenizer(miniRanks(['he', ' t', ' the', 'll', 'llo', 'hello']), { layout: 'lmp' })
  t.equal(tk.vocabSize, 4 + 256 + 6)
  t.same(tk.specialIds, { bos: 0, eos: 1, pad: 2, unk: 3 })
  t.same(tk.enc('hello'), [0, 4 + 256 + 5, 1])
  t.same(tk.enc('a<unk>b<eos>'), [0, 4 + 64, 3, 4 + 65, 1, 1], 'special tokens inside text')
  t.equal(tk.dec(tk.enc('héllo wörld 😀')), '<bos>héllo wörld 😀<eos>')
  t.equal(tk.dec([0, ...tk.enc('x y').slice(1, -1), 2, 1], { rmSpTks: true }), 'x y')
  t.equal(tk.tokenBytes(4 + 64)?.[0], 'a'.charCodeAt(0))
})

t.test('max_vocab keeps the first tokens and drops later merges', async (t) => {
  const tk = new Gpt2Tokenizer(miniRanks(['he', ' t', ' the']), { maxVocab: 3 + 256 + 1 })
  t.equal(tk.vocabSize, 260)
  t.same(tk.tknz('he the'), ['he', 'Ġ', 't', 'he'], "' t' and ' the' are past the cap")
  const tiny = new Gpt2Tokenizer(miniRanks([]), { maxVocab: 10 })
  t.equal(tiny.vocabSize, 10)
  t.same(tiny.specialIds, { bos: 7, eos: 7, pad: 8, unk: 9 }, 'the specials come after the tokens kept')
  t.same(tiny.enc('!"#$%&z'), [7, 0, 1, 2, 3, 4, 5, 9, 7], 'bytes past the cap are UNK')
  const legacy = new Gpt2Tokenizer(miniRanks([]), { maxVocab: 10, layout: 'lmp' })
  t.same(legacy.enc('!"#$%&z'), [0, 4, 5, 6, 7, 8, 9, 3, 1])
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
  t.equal(tk.vocabSize, 50259)
  // GPT-2's own ids: "Hello world" is [15496, 995], <|endoftext|> 50256
  t.same(tk.enc('Hello world'), [50256, 15496, 995, 50256])
  t.same(tk.specialIds, { bos: 50256, eos: 50256, pad: 50257, unk: 50258 })
  t.same(tk.tknz('Hello world'), ['Hello', 'Ġworld'])
  const json = JSON.parse(JSON.stringify(tk))
  t.equal(json.layout, 'gpt2')
  const back = tokenizerFromJSON(json)
  t.same(back.enc('Hello world'), tk.enc('Hello world'))
  // A tokenizer.json written before 0.2 (no layout) keeps its ids, so its trained models still read right.
  const old = tokenizerFromJSON({ tknzr_name: 'gpt2', is_uncased: false, max_vocab: -1, min_count: 0, ranks: GPT2_RANKS_MODULE })
  t.equal(old.vocabSize, 50260)
  t.same(old.enc('Hello world'), [0, 15496 + 4, 995 + 4, 1])
  throwsLmp(t, () => tokenizerFromJSON({ ...json, layout: 'nope' }), /malformed tokenizer JSON: unknown gpt2 id layout 'nope'/)
})
