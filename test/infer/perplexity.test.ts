import t from 'tap'
import { LmpError } from '../../src/errors.ts'
import { scoreText, scoreTexts, type Score } from '../../src/infer/perplexity.ts'
import { EOS_ID, PAD_ID } from '../../src/tokenizer/index.ts'
import { charTokenizer, fakeModel, historyLogits, type LogitsFn } from './fakes.ts'

const tk = charTokenizer()
const V = tk.vocabSize
const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b))
const near = (a: number, b: number) => close(a, b, 1e-6) // against values worked out in float64
const LONG = 'the quick brown fox jumps over the lazy dog, if you add 1 to 2 you get 3 . hello world!'

/** Reference: a target's ln p from logits computed with the given context, written out plainly. */
function lnP(logitsFor: LogitsFn, context: number[], target: number): number {
  const row = logitsFor(context).map(Math.fround) // the model hands out float32 logits
  const max = Math.max(...row)
  return row[target] - (max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0)))
}

t.test('by hand: BOS is not a target, EOS is', async (t) => {
  // p(EOS) = 1/2 everywhere, the other V-1 tokens share the other half.
  const model = fakeModel(V, () => Array.from({ length: V }, (_, v) => (v === EOS_ID ? Math.log(V - 1) : 0)))
  const s = await scoreText(model, tk, 'ab', { perToken: true })
  const nll = 2 * Math.log(2 * (V - 1)) + Math.log(2)
  t.equal(s.tokens, 3, "targets 'a', 'b', EOS")
  t.ok(near(s.nll, nll), `${s.nll} vs ${nll}`)
  t.ok(near(s.natsPerToken, nll / 3))
  t.ok(near(s.bitsPerToken, nll / 3 / Math.LN2))
  t.ok(near(s.ppl, Math.exp(nll / 3)))
  const [a, b] = tk.enc('ab').slice(1, 3)
  t.same(s.perToken!.map((e) => e.tokenId), [a, b, EOS_ID])
  t.ok(near(s.perToken![0].logprob, -Math.log(2 * (V - 1))))
  t.ok(near(s.perToken![2].logprob, -Math.log(2)))
  const uniform = await scoreText(fakeModel(V, () => new Array(V).fill(0)), tk, 'hello')
  t.ok(near(uniform.ppl, V), 'a uniform model has perplexity V')
  t.equal((await scoreText(fakeModel(V, () => new Array(V).fill(0)), tk, '')).tokens, 1, 'an empty text still predicts EOS')
})

t.test('alternatives and PAD targets', async (t) => {
  const model = fakeModel(V, historyLogits(V))
  const s = await scoreText(model, tk, 'a<pad>b', { perToken: true, alternatives: 3 })
  t.equal(s.tokens, 3, 'the PAD target is ignored')
  t.same(s.perToken!.map((e) => e.tokenId), [...tk.enc('a').slice(1, 2), ...tk.enc('b').slice(1, 2), EOS_ID])
  for (const e of s.perToken!) {
    t.equal(e.top!.length, 3)
    t.ok(e.top![0].logprob >= e.top![1].logprob && e.top![1].logprob >= e.top![2].logprob)
    t.ok(e.top![0].logprob >= e.logprob)
  }
})

t.test('recurrent: chunks carrying the state equal the plain sum over the text', async (t) => {
  const logitsFor = historyLogits(V)
  const ids = tk.enc(LONG)
  let reference = 0
  for (let j = 1; j < ids.length; j++) reference -= lnP(logitsFor, ids.slice(0, j), ids[j])
  for (const window of [undefined, 1, 7, 1000]) {
    const model = fakeModel(V, logitsFor)
    const s = await scoreText(model, tk, LONG, { window, perToken: true })
    t.equal(s.tokens, ids.length - 1)
    t.ok(close(s.nll, reference), `window ${window}: ${s.nll} vs ${reference}`)
    t.same(s.perToken!.map((e) => e.tokenId), ids.slice(1))
    if (window === 7) {
      t.equal(model.calls.length, Math.ceil((ids.length - 1) / 7))
      model.calls.forEach((c, i) => t.same(c.state[0].dims, [1, 7 * i], 'each chunk gets the state of the previous one'))
    }
  }
})

t.test('Transformer: the sliding window equals full context when the text fits', async (t) => {
  const logitsFor = historyLogits(V)
  const full = await scoreText(fakeModel(V, logitsFor), tk, LONG, { perToken: true })
  const fits = fakeModel(V, logitsFor, 128)
  const windowed = await scoreText(fits, tk, LONG, { perToken: true, stride: 3 })
  t.equal(fits.calls.length, 1)
  t.same(windowed, full)
})

t.test('Transformer: long texts score every token once, with as much context as the window allows', async (t) => {
  const logitsFor = historyLogits(V)
  const ids = tk.enc(LONG)
  const L = 16
  // stride 1: the token at target position j (predicted from ids[..j]) sees exactly ids[j-L+1 .. j].
  const model = fakeModel(V, logitsFor, L) // it throws if ever fed more than L positions
  const s = await scoreText(model, tk, LONG, { perToken: true, stride: 1 })
  t.equal(s.tokens, ids.length - 1)
  s.perToken!.forEach((e, i) => {
    const j = i // input position predicting ids[j + 1]
    const context = ids.slice(Math.max(0, j - L + 1), j + 1)
    t.ok(close(e.logprob, lnP(logitsFor, context, ids[j + 1])), `position ${j}`)
  })
  t.equal(model.calls.length, ids.length - 1 - L + 1)
  for (const stride of [4, 16, undefined]) {
    const m = fakeModel(V, logitsFor, L)
    const r = await scoreText(m, tk, LONG, { stride, perToken: true })
    t.equal(r.tokens, ids.length - 1, `stride ${stride}: each token once`)
    t.same(r.perToken!.map((e) => e.tokenId), ids.slice(1))
    t.ok(m.calls.every((c) => c.ids[0].length === L && c.state[0].dims[1] === 0), 'full windows, fresh state')
  }
  // A smaller window than the model's context.
  const small = await scoreText(fakeModel(V, logitsFor, L), tk, LONG, { window: 8, stride: 8, perToken: true })
  t.ok(close(small.perToken![9].logprob, lnP(logitsFor, ids.slice(8, 10), ids[10])), 'window 8: position 9 sees ids[8..9]')
})

t.test('batch scoring equals one-by-one scoring (PAD padding ignored)', async (t) => {
  const texts = ['hello', LONG, '', 'you get 3 .', LONG.slice(0, 40), 'a<pad>b', 'the lazy dog']
  for (const maxSeqLen of [null, 16]) {
    const logitsFor = historyLogits(V)
    let nll = 0
    let tokens = 0
    for (const text of texts) {
      const s = await scoreText(fakeModel(V, logitsFor, maxSeqLen), tk, text, { stride: 5 })
      nll += s.nll
      tokens += s.tokens
    }
    const model = fakeModel(V, logitsFor, maxSeqLen)
    const progress: number[] = []
    const batched = await scoreTexts(model, tk, texts, { batchSize: 3, stride: 5, onProgress: (n) => progress.push(n) })
    t.equal(batched.tokens, tokens, `maxSeqLen ${maxSeqLen}`)
    t.ok(close(batched.nll, nll), `${batched.nll} vs ${nll}`)
    t.ok(close(batched.ppl, Math.exp(nll / tokens)))
    t.same(progress, [3, 6, 7])
    t.ok(model.calls.some((c) => c.ids.length === 3 && c.ids.some((row) => row[row.length - 1] === PAD_ID)), 'rows were padded')
  }
})

t.test('async iterables of texts, and the default window of a recurrent model', async (t) => {
  async function* lines() {
    yield 'hello'
    yield 'world'
  }
  const logitsFor = historyLogits(V)
  const a: Score = await scoreTexts(fakeModel(V, logitsFor), tk, lines())
  const b = await scoreTexts(fakeModel(V, logitsFor), tk, ['hello', 'world'], { batchSize: 1, window: 2 })
  t.equal(a.tokens, 12)
  t.ok(close(a.nll, b.nll))
})

t.test('bad options and empty input are one-line LmpErrors', async (t) => {
  const model = fakeModel(V, historyLogits(V), 16)
  const cases: [() => Promise<unknown>, RegExp][] = [
    [() => scoreText(model, tk, 'ab', { window: 0 }), /^window must be an integer >= 1/],
    [() => scoreText(model, tk, 'ab', { window: 17 }), /^window must be at most the model's context \(16\)/],
    [() => scoreText(model, tk, 'ab', { stride: 0 }), /^stride must be an integer in \[1, 16\]/],
    [() => scoreText(model, tk, 'ab', { window: 8, stride: 9 }), /^stride/],
    [() => scoreTexts(model, tk, ['ab'], { batchSize: 0 }), /^batch_size must be an integer >= 1/],
    [() => scoreTexts(model, tk, []), /^nothing to score/],
  ]
  for (const [run, message] of cases) await t.rejects(run(), { constructor: LmpError, message })
})
