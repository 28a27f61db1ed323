// Tokenizer speed on Tiny Shakespeare (1.1 MB): build time, and encoding 1 MB with each tokenizer (medians
// of 5 runs on a fresh tokenizer, so BPE's per-word cache starts cold every run), tokens per character.
import { readFileSync } from 'node:fs'
import { createTokenizer, type Tokenizer } from '../src/tokenizer/index.ts'
import { median, report } from './util.ts'

const text = readFileSync(new URL('../../shared/data/tinyshakespeare/input.txt', import.meta.url), 'utf8')
const train = text.slice(0, 1003854)
const mb = text.slice(0, 1 << 20)
const lines = train.split('\n')

const configs: [string, Record<string, number>][] = [['character', {}], ['whitespace', {}], ['BPE', { nMerge: 1000 }], ['BPE', { nMerge: 10000 }]]
for (const [name, opts] of configs) {
  const build: number[] = []
  const enc: number[] = []
  let tk: Tokenizer | undefined
  let n = 0
  for (let run = 0; run < 5; run++) {
    let t0 = performance.now()
    tk = createTokenizer(name, opts)
    tk.buildVocab(lines)
    build.push(performance.now() - t0)
    t0 = performance.now()
    n = tk.enc(mb).length
    enc.push(performance.now() - t0)
  }
  report('tokenizer', {
    tokenizer: name, ...opts, vocab_size: tk!.vocabSize,
    build_ms: +median(build).toFixed(1), encode_1mb_ms: +median(enc).toFixed(1),
    encode_mb_per_s: +((1000 / median(enc)) * (mb.length / (1 << 20))).toFixed(2),
    tokens_per_char: +(n / mb.length).toFixed(4),
  })
}
