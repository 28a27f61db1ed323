// Every lmp tokenizer exported as a Hugging Face tokenizer.json + tokenizer_config.json (src/tokenizer/hf.ts),
// loaded by Hugging Face's own JavaScript tokenizers library (@huggingface/tokenizers, the one transformers.js
// 4.x tokenizes with), gives exactly lmp's ids: on Tiny Shakespeare and on a text made to break normalization.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers'
import { createTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts'
import { loadGpt2Sync } from '../../src/tokenizer/io.ts'
import { gpt2Merges, hfTokenizerConfig, hfTokenizerJSON } from '../../src/tokenizer/hf.ts'
import { BPETokenizer } from '../../src/tokenizer/bpe.ts'
import { WHITESPACE, throwsLmp } from './helpers.ts'

const SHAKESPEARE = new URL('../../../shared/data/tinyshakespeare/input.txt', import.meta.url)
const text = existsSync(SHAKESPEARE) ? readFileSync(SHAKESPEARE, 'utf8') : undefined

/** Emoji (astral, ZWJ sequence), CJK, combining marks, every whitespace kind Python or JS knows (U+FEFF is not
 * Python whitespace: a word character to lmp), text NFKC changes (ﬁ, ①, full-width '＜bos＞' -> '<bos>', Hangul
 * jamo -> a syllable, e + U+0301 -> é), a final sigma, special tokens inside words, and characters and words no
 * vocabulary trained on Shakespeare has. */
const NASTY =
  `  ${WHITESPACE.join('a')} 😀 👩‍👩‍👧 𝔘 中文字 日本語 한국어 \u1100\u1161 e\u0301 a\u0308\u0301 q\u20dd ` +
  `ﬁne ① ＜bos＞ ＯＤＹＳＳΕΥΣ ΟΔΥΣΣΕΥΣ word<eos>word<unk> <pad><bos> <BOS> x<eow>y zzyzx\u{10ffff} \uFEFFlead \r\n\t end  \uFEFF`

interface Case { label: string; tk: Tokenizer }

function cases(): Case[] {
  const lines = (text ?? NASTY).slice(0, 200_000).split('\n')
  const made: Case[] = []
  const add = (label: string, name: string, opts: object) => {
    const tk = createTokenizer(name, opts)
    tk.buildVocab(lines)
    made.push({ label, tk })
  }
  add('character', 'character', {})
  add('character uncased', 'character', { isUncased: true })
  add('character raw', 'character', { isRaw: true })
  add('whitespace', 'whitespace', { maxVocab: 5000 })
  add('whitespace uncased', 'whitespace', { isUncased: true, minCount: 2 })
  add('BPE', 'BPE', { maxVocab: 1500 })
  add('BPE uncased', 'BPE', { isUncased: true, nMerge: 300 })
  loadGpt2Sync()
  add('gpt2', 'gpt2', {})
  add('gpt2 uncased', 'gpt2', { isUncased: true })
  add('gpt2 max_vocab 2000', 'gpt2', { maxVocab: 2000 })
  return made
}

/** The two files as a Hugging Face tool reads them: JSON text, parsed. */
function exported(tk: Tokenizer): { json: any; config: any; hf: HfTokenizer } {
  const json = JSON.parse(JSON.stringify(hfTokenizerJSON(tk)))
  const config = JSON.parse(JSON.stringify(hfTokenizerConfig(tk, 256)))
  return { json, config, hf: new HfTokenizer(json, config) }
}

const firstDiff = (a: number[], b: number[]) => {
  let i = 0
  while (i < a.length && a[i] === b[i]) i++
  return i === a.length && a.length === b.length ? -1 : i
}

t.test('@huggingface/tokenizers encodes and decodes like lmp, for every tokenizer', async (t) => {
  if (!text) t.comment(`Tiny Shakespeare not found at ${SHAKESPEARE.pathname}: only the constructed sample is checked`)
  const shakespeare = text ? text.slice(100_000, 110_000) : undefined // outside most of what the vocabularies saw
  for (const { label, tk } of cases()) {
    await t.test(label, async (t) => {
      const { json, config, hf } = exported(tk)
      t.equal(json.version, '1.0')
      t.equal(config.model_max_length, 256)
      t.equal(hf.get_vocab().size, tk.vocabSize, 'the same vocabulary size')
      for (const [name, sample] of [['Tiny Shakespeare (10,000 characters)', shakespeare], ['constructed sample', NASTY]] as const) {
        if (sample === undefined) continue
        const ours = tk.enc(sample)
        const withBos = hf.encode(sample).ids
        const at = firstDiff(ours.slice(0, -1), withBos)
        t.equal(at, -1, `${name}: HF ids (BOS added) == enc() without its EOS` +
          (at < 0 ? '' : `; first difference at ${at}: ours ${ours.slice(at, at + 4)} HF ${withBos.slice(at, at + 4)} (${hf.encode(sample).tokens.slice(at, at + 4)})`))
        t.same(hf.encode(sample, { add_special_tokens: false }).ids, ours.slice(1, -1), `${name}: without special tokens`)
        t.equal(hf.decode(ours), tk.dec(ours), `${name}: decode == dec()`)
      }
      // skip_special_tokens (drops BOS/EOS/PAD, and <unk>, which lmp keeps) on a text every vocabulary covers
      const plain = tk.enc('the king')
      const unk = tk.enc('\u{10ffff}')[1]
      if (!plain.includes(unk)) t.equal(hf.decode(plain, { skip_special_tokens: true }), tk.dec(plain, { rmSpTks: true }), 'skip_special_tokens == rmSpTks')
    })
  }
})

t.test('the checks can fail: a wrong normalizer, merges or vocabulary changes the ids', async (t) => {
  // vocabularies that know every character of the sample, so a wrong normalization cannot hide behind <unk>
  const lines = [...(text ?? '').slice(0, 50_000).split('\n'), NASTY.normalize('NFKC'), NASTY.normalize('NFKC').toLowerCase()]
  const get = (label: string) => {
    const [name, opts] = ({
      character: ['character', {}], 'character uncased': ['character', { isUncased: true }], whitespace: ['whitespace', {}],
      BPE: ['BPE', { maxVocab: 1500 }], gpt2: ['gpt2', {}],
    } as Record<string, [string, object]>)[label]
    const tk = createTokenizer(name, opts)
    tk.buildVocab(lines)
    return tk
  }
  loadGpt2Sync()
  const differs = (tk: Tokenizer, edit: (json: any) => void, why: string) => {
    const json = hfTokenizerJSON(tk) as any
    edit(json)
    const hf = new HfTokenizer(json, hfTokenizerConfig(tk))
    t.not(JSON.stringify(hf.encode(NASTY).ids), JSON.stringify(tk.enc(NASTY).slice(0, -1)), why)
  }
  differs(get('character'), (j) => { j.normalizer.normalizers.shift() }, 'without NFKC')
  differs(get('character'), (j) => { j.normalizer.normalizers[1] = { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' } }, "with JavaScript's \\s instead of Python's whitespace")
  differs(get('character'), (j) => { j.normalizer.normalizers[2] = { type: 'Strip', strip_left: true, strip_right: true } }, "with tokenizers' Strip (trims U+FEFF)")
  differs(get('character uncased'), (j) => { j.normalizer.normalizers.splice(3, 1) }, 'lowercasing without the Σ -> σ step (final sigma)')
  differs(get('whitespace'), (j) => { j.added_tokens = [] }, 'without the special tokens as added tokens')
  differs(get('character'), (j) => { for (const a of j.added_tokens) a.normalized = false }, 'special tokens matched before normalization')
  differs(get('BPE'), (j) => { j.model.merges = [] }, 'BPE without merges')
  differs(get('BPE'), (j) => { j.model.merges.reverse() }, 'BPE with the merges in the wrong order')
  differs(get('gpt2'), (j) => { j.model.merges = j.model.merges.slice(0, 1000) }, 'gpt2 with part of its merges')
  differs(get('gpt2'), (j) => { j.model.merges.reverse() }, 'gpt2 with the merges in the wrong order')
  t.ok((get('BPE') as BPETokenizer).merges.length > 500, 'the BPE tokenizer learned merges')
})

t.test("gpt2: GPT-2's real vocabulary and merges", async (t) => {
  loadGpt2Sync()
  const tk = createTokenizer('gpt2')
  const json = hfTokenizerJSON(tk) as any
  const vocab: Record<string, number> = json.model.vocab
  t.equal(Object.keys(vocab).length, tk.vocabSize)
  t.equal(json.model.merges.length, 50_000, "GPT-2's 50,000 merges")
  // GPT-2's merges.txt starts 'Ġ t', 'Ġ a', 'h e', 'i n', 'r e', 'o n', 'Ġt he' (vocab.json ids 256-262)
  t.same(json.model.merges.slice(0, 7), [['Ġ', 't'], ['Ġ', 'a'], ['h', 'e'], ['i', 'n'], ['r', 'e'], ['o', 'n'], ['Ġt', 'he']])
  t.equal(vocab['Ġthe'] - vocab['!'], 262, "'Ġthe' is GPT-2 id 262 ('!' is id 0)")
  t.equal(vocab['Ġthe'] - vocab['Ġt'], 6)
  const hf = new HfTokenizer(json, hfTokenizerConfig(tk))
  const g = (ids: number[]) => ids.map((id) => id - vocab['!']) // GPT-2's own ids, whatever our id layout
  t.same(g(hf.encode('Hello world', { add_special_tokens: false }).ids), [15496, 995], "GPT-2's ids for 'Hello world'")
  const config = hfTokenizerConfig(tk) as any
  t.equal(config.tokenizer_class, 'GPT2Tokenizer')
  t.equal(hf.encode('x').ids[0], hf.token_to_id(config.bos_token), 'BOS first')
})

t.test('gpt2Merges recovers a rank table and rejects an unreachable token', async (t) => {
  const bytes = ['a', 'b', 'c']
  t.same(gpt2Merges([...bytes, 'ab', 'abc', 'bc']), [['a', 'b'], ['ab', 'c'], ['b', 'c']])
  t.same(gpt2Merges([...bytes, 'bc', 'ab', 'abc']), [['b', 'c'], ['a', 'b'], ['a', 'bc']], 'the pair BPE ends with, not any split')
  throwsLmp(t, () => gpt2Merges([...bytes, 'abc']), /token 3 .* not one merge/)
})

t.test('tokenizer_config.json', async (t) => {
  const tk = createTokenizer('character')
  tk.buildVocab(['abc'])
  t.same(hfTokenizerConfig(tk, 64), {
    tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<bos>', eos_token: '<eos>', pad_token: '<pad>', unk_token: '<unk>',
    add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false, model_max_length: 64,
  })
  t.notOk('model_max_length' in hfTokenizerConfig(tk), 'no model_max_length when none is given')
  throwsLmp(t, () => hfTokenizerConfig(tk, 0), /model_max_length must be an integer >= 1/)
  const raw = createTokenizer('character', { isRaw: true } as object)
  raw.buildVocab(['<bos> x'])
  t.same((hfTokenizerConfig(raw) as any).additional_special_tokens, ['<bos>', '<eos>', '<pad>', '<unk>'], 'raw: specials named for decoders')
  const hf = new HfTokenizer(hfTokenizerJSON(raw) as any, hfTokenizerConfig(raw) as any)
  const ids = raw.enc('<bos>')
  t.equal(ids.length, 7, "raw: '<bos>' in a text is five characters, as in lmp")
  t.same(hf.encode('<bos>').ids, ids.slice(0, -1), '... and in HF')
  t.equal(hf.decode([...ids, raw.enc('q')[1]], { skip_special_tokens: true }), '<bos>', 'raw: skip_special_tokens drops BOS, EOS and <unk> but not the characters')
})

t.test('a tokenizer of no known kind is an LmpError', async (t) => {
  const fake = { name: 'fake', vocabSize: 4 } as unknown as Tokenizer
  throwsLmp(t, () => hfTokenizerJSON(fake), /no Hugging Face tokenizer.json for tokenizer 'fake'/)
})
