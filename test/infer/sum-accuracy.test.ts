// The demo's accuracy of greedy sums (src/infer/sum-accuracy.ts) against a fake model that writes each
// sample's continuation from its history, wrong on purpose where 5 divides a + b: the accuracy is known
// exactly, and the batched greedy decoding must equal generateText's, prompt by prompt.
import t from 'tap'
import { demoSamples } from '../../src/data/demo.ts'
import { sumAccuracy, sumPrompt } from '../../src/infer/sum-accuracy.ts'
import { generateText } from '../../src/infer/generate.ts'
import { createTokenizer, EOS_ID } from '../../src/tokenizer/index.ts'
import { fakeModel } from './fakes.ts'

const tk = createTokenizer('character', { isUncased: true })
tk.buildVocab(demoSamples('train'))
const wrong = (a: number, b: number) => (a + b) % 5 === 0

/** Logits that pick the next id of "prompt s ." (then EOS), with s = a + b + 1 where wrong(a, b). */
function oracle(history: number[]): number[] {
  const logits = new Array<number>(tk.vocabSize).fill(0)
  const m = /^if you add (\d+) to (\d+) you get/.exec(tk.dec(history, { rmSpTks: true }))
  if (!m) return logits // inside the prompt: no prediction asked for
  const [a, b] = [Number(m[1]), Number(m[2])]
  const full = tk.enc(`if you add ${a} to ${b} you get ${a + b + (wrong(a, b) ? 1 : 0)} .`).slice(0, -1) // BOS and the text
  logits[history.length < full.length ? full[history.length] : EOS_ID] = 1
  return logits
}

t.test('sumPrompt cuts a demo sample before its sum', async (t) => {
  t.equal(sumPrompt('If you add 12 to 34 you get 46 .'), 'If you add 12 to 34 you get')
  t.throws(() => sumPrompt('If you add 12 to 34'), /not a demo sample/)
})

t.test('accuracy of greedy sums: exact, batched as one-by-one generation', async (t) => {
  const samples = demoSamples('valid').filter((_, i) => i % 7 === 0)
  const model = fakeModel(tk.vocabSize, oracle, 40)
  const a = await sumAccuracy(model, tk, samples, { batchSize: 16 })
  const expected = samples.filter((s) => { const [, x, y] = /add (\d+) to (\d+)/.exec(s)!; return !wrong(+x, +y) }).length
  t.ok(expected < samples.length && expected > 0)
  t.equal(a.correct, expected, `${a.correct}/${a.total}`)
  t.equal(a.accuracy, expected / samples.length)
  for (const i of [0, 5, 40, samples.length - 1]) {
    const g = await generateText(model, tk, sumPrompt(samples[i]), { maxNewTokens: 8, temperature: 0 })
    t.equal(a.texts[i], tk.dec([...tk.enc(sumPrompt(samples[i])).slice(0, -1), ...g.tokenIds], { rmSpTks: true }), `sample ${i}: same text as generateText`)
  }
  const none = await sumAccuracy(fakeModel(tk.vocabSize, () => new Array(tk.vocabSize).fill(0).map((_, i) => (i === tk.enc('1')[1] ? 1 : 0)), 40), tk, samples.slice(0, 3))
  t.equal(none.correct, 0, 'a model that never ends its text gets nothing right')
})
