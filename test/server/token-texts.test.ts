// Property (issue 13): over random prompts and all four tokenizer kinds, the logprobs tokens of a completion
// concatenate to its text and each text_offset points at its token, with echo or without, plain or
// streaming, cut by a stop string or not. The models are fakes with smooth, history-dependent logits over
// the whole vocabulary (so sampling wanders through every kind of token: spaces, word-final and mid-word
// BPE pieces, unknown words, byte-level tokens that hold parts of characters); tokenizers and generation
// are the real ones.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { pino } from 'pino'
import { createApp } from '../../server/app.ts'
import type { ServedModel } from '../../server/models.ts'
import { demoSamples } from '../../src/data/demo.ts'
import { createTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts'
import { loadGpt2Sync } from '../../src/tokenizer/io.ts'
import { tokenTexts } from '../../src/tokenizer/pieces.ts'
import { createRng } from '../../src/infer/rng.ts'
import { fakeModel, type LogitsFn } from '../infer/fakes.ts'
import { listen, sseEvents } from './http.ts'

loadGpt2Sync()
const corpus = [...demoSamples('train').slice(0, 200), 'naïve café — 漢字 かな 🙂 🎉 ok', 'the quick brown fox jumps over the lazy dog']

/** Logits that depend on the whole history: a window into a fixed random table (cheap for 50k tokens). */
function tableLogits(vocab: number): LogitsFn {
  const rng = createRng(7)
  const table = Float32Array.from({ length: 2 * vocab }, () => 4 * rng.next())
  return (h) => {
    const at = h.reduce((a, id, i) => (a * 31 + id + i) % vocab, 0)
    return table.subarray(at, at + vocab) as unknown as number[]
  }
}

function model(name: string, tokenizer: Tokenizer): ServedModel {
  tokenizer.buildVocab(corpus)
  const m = fakeModel(tokenizer.vocabSize, tableLogits(tokenizer.vocabSize))
  return { name, tokenizer, model: m, manifest: m.manifest }
}

const models = [
  model('character', createTokenizer('character')),
  model('whitespace', createTokenizer('whitespace')),
  model('BPE', createTokenizer('BPE', { nMerge: 300 })),
  model('gpt2', createTokenizer('gpt2')),
]
const app = createApp({ models, logger: pino({ level: 'silent' }) })
const { post, stream } = await listen(t, app)

const prompt = fc.oneof(
  fc.constantFrom(...corpus.slice(0, 20), '', ' ', 'a  b', '🎉🎉', 'x\ny\tz '),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.array(fc.constantFrom('If', 'you', 'add', '3', 'get', '🙂', 'é', 'ﬁ', ' ', '  ', '.', 'zz'), { maxLength: 10 }).map((w) => w.join('')),
)

/** Offsets count code points, as OpenAI's and vLLM's (Python) servers do. */
function checkSpelling(t: Test, what: string, text: string, lp: { tokens: string[]; text_offset: number[] }): boolean {
  const chars = [...text]
  const length = (s: string) => [...s].length
  const ok = lp.tokens.join('') === text &&
    lp.tokens.every((tok, i) => lp.text_offset[i] === (i === 0 ? 0 : lp.text_offset[i - 1] + length(lp.tokens[i - 1])) &&
      chars.slice(lp.text_offset[i], lp.text_offset[i] + length(tok)).join('') === tok)
  if (!ok) t.fail(`${what}: ${JSON.stringify({ text, tokens: lp.tokens, text_offset: lp.text_offset })}`)
  return ok
}

for (const m of models) {
  t.test(`${m.name}: logprobs tokens spell the text, offsets point at them`, async (t) => {
    let runs = 0
    await fc.assert(
      fc.asyncProperty(prompt, fc.boolean(), fc.integer({ min: 0, max: 12 }), fc.nat(1000), fc.option(fc.constantFrom(' ', 'e', '3 ', '\uFFFD', 'ou'), { nil: undefined }),
        async (text, echo, maxTokens, seed, stop) => {
          runs++
          const body = { model: m.name, prompt: text, echo, max_tokens: maxTokens, seed, temperature: 1, logprobs: 2, stop }
          const r = await post('/v1/completions', body)
          if (r.status !== 200) return t.fail(`${r.status} ${JSON.stringify(r.json)}`) as unknown as boolean
          const choice = r.json.choices[0]
          if (!checkSpelling(t, `${m.name} ${JSON.stringify(body)}`, choice.text, choice.logprobs)) return false
          if (echo) {
            // The echoed part is the prompt as the tokenizer reads it: its tokens' own texts.
            const own = tokenTexts(m.tokenizer, m.tokenizer.enc(text).slice(1, -1))!.join('')
            if (!choice.text.startsWith(own)) return t.fail(`echo of ${JSON.stringify(text)}: ${JSON.stringify(choice.text)}`) as unknown as boolean
          }
          // Streaming gives the same tokens and text, chunk by chunk.
          if (stop === undefined) {
            const s = await stream(body)
            let streamed = ''
            const tokens: string[] = []
            const offsets: number[] = []
            for await (const ev of s.events) {
              if (ev === 'DONE' || !ev.choices?.length) continue
              streamed += ev.choices[0].text
              if (ev.choices[0].logprobs) {
                tokens.push(...ev.choices[0].logprobs.tokens)
                offsets.push(...ev.choices[0].logprobs.text_offset)
              }
            }
            if (streamed !== choice.text) return t.fail(`stream ${JSON.stringify(streamed)} vs ${JSON.stringify(choice.text)}`) as unknown as boolean
            if (!checkSpelling(t, `${m.name} streamed ${JSON.stringify(body)}`, streamed, { tokens, text_offset: offsets })) return false
          }
          return true
        }),
      { numRuns: 30, seed: 1313 },
    )
    t.equal(runs, 30)
  })
}
