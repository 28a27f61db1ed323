import t from 'tap'
import { LmpError } from '../../src/errors.ts'
import { generate, generateText, Generation, type GenerateOptions, type GenerationEvent, type TextCodec } from '../../src/infer/generate.ts'
import { createTokenizer, EOS_ID, PAD_ID } from '../../src/tokenizer/index.ts'
import { tokenTexts } from '../../src/tokenizer/pieces.ts'
import { loadGpt2Sync } from '../../src/tokenizer/io.ts'
import { charIds, charTokenizer, fakeModel, historyLogits, scriptedLogits } from './fakes.ts'

const tk = charTokenizer()
const V = tk.vocabSize
const greedy = (maxNewTokens: number, more: Partial<GenerateOptions> = {}): GenerateOptions => ({ maxNewTokens, temperature: 0, ...more })

/** A model that writes `continuation` (then EOS) after `prompt`, greedily. */
function writer(prompt: string, continuation: string, maxSeqLen: number | null = null) {
  const promptLength = tk.enc(prompt).length - 1
  return fakeModel(V, scriptedLogits(V, promptLength, charIds(tk, continuation)), maxSeqLen)
}

async function collect(events: AsyncIterable<GenerationEvent>): Promise<GenerationEvent[]> {
  const out: GenerationEvent[] = []
  for await (const e of events) out.push(e)
  return out
}

t.test('greedy: the scripted continuation, each token’s own text as its delta, EOS ends it', async (t) => {
  const model = writer('you get', ' 3 .')
  const events = await collect(generate(model, tk, 'you get', greedy(50)))
  t.same(events.map((e) => e.tokenId), [...charIds(tk, ' 3 .'), EOS_ID])
  t.same(events.map((e) => e.textDelta), [' ', '3', ' ', '.', ''], 'a space token is a space (issue 13, fault 3)')
  t.same(events.map((e) => e.token), [' ', '3', ' ', '.', ''])
  t.same(events.map((e) => e.done), [false, false, false, false, true])
  t.equal(events[4].finishReason, 'eos')
  const result = await generateText(writer('you get', ' 3 .'), tk, 'you get', greedy(50))
  t.same(result, { text: ' 3 .', tokenIds: [...charIds(tk, ' 3 .'), EOS_ID], finishReason: 'eos' })
})

t.test('prefill is one call with the whole prompt, then one call per token carrying the state', async (t) => {
  const model = writer('hello', ' world')
  const { tokenIds } = await generateText(model, tk, 'hello', greedy(50))
  const promptIds = tk.enc('hello').slice(0, -1)
  t.equal(tokenIds.length, 7)
  t.equal(model.calls.length, 7, 'no call after EOS')
  t.same(model.calls[0].ids, [promptIds], 'BOS kept, EOS dropped')
  t.same(model.calls[0].state[0].dims, [1, 0], 'a fresh state for the prefill')
  for (let i = 1; i < model.calls.length; i++) {
    t.same(model.calls[i].ids, [[tokenIds[i - 1]]])
    t.same(model.calls[i].state[0].dims, [1, promptIds.length + i - 1], 'the previous call’s state is fed back')
    t.same(Array.from(model.calls[i].state[0].data), [...promptIds, ...tokenIds.slice(0, i - 1)])
  }
})

t.test('an empty prompt starts from BOS alone', async (t) => {
  const model = writer('', 'hi')
  const result = await generateText(model, tk, '', greedy(10))
  t.same(model.calls[0].ids, [[0]])
  t.equal(result.text, 'hi')
})

t.test('max_new_tokens ends with "length"; 0 makes no model call', async (t) => {
  const model = writer('', 'hello world')
  const r = await generateText(model, tk, '', greedy(3))
  t.same(r, { text: 'hel', tokenIds: charIds(tk, 'hel'), finishReason: 'length' })
  t.equal(model.calls.length, 3)
  const idle = writer('', 'hello')
  t.same(await generateText(idle, tk, 'abc', greedy(0)), { text: '', tokenIds: [], finishReason: 'length' })
  t.equal(idle.calls.length, 0)
  t.same(await collect(generate(idle, tk, 'abc', greedy(0))), [])
})

t.test('BOS, PAD and UNK are never generated even when the model prefers them', async (t) => {
  // scriptedLogits gives PAD 20 everywhere; here BOS and UNK get even more.
  const model = fakeModel(V, (h) => Array.from({ length: V }, (_, v) => [30, 0, 20, 25][v] ?? (v === 9 ? 5 : 0)))
  const r = await generateText(model, tk, 'a', greedy(3))
  t.same(r.tokenIds, [9, 9, 9])
  const sampled = await generateText(model, tk, 'a', { maxNewTokens: 50, seed: 1 })
  t.notOk(sampled.tokenIds.some((id) => id === 0 || id === 2 || id === 3))
})

t.test('stop strings', async (t) => {
  const run = async (stop: string[]) => {
    const model = writer('', 'hello world')
    const events = await collect(generate(model, tk, '', greedy(50, { stop })))
    const last = events[events.length - 1]
    return { deltas: events.map((e) => e.textDelta), text: events.map((e) => e.textDelta).join(''), reason: last.finishReason, n: events.length }
  }
  // Split across tokens; the 'l' and 'lo' that may start it are held back, never streamed.
  t.same(await run(['lo w']), { deltas: ['h', 'e', '', 'l', '', '', ''], text: 'hel', reason: 'stop', n: 7 })
  // A held-back prefix is released as soon as it cannot be a stop string any more.
  const released = await run(['lox'])
  t.equal(released.text, 'hello world')
  t.same(released.deltas.slice(0, 7), ['h', 'e', '', 'l', '', 'lo ', 'w'])
  // ... and at the end of the generation (EOS here).
  const atEnd = await run(['ld!'])
  t.same(atEnd, { deltas: ['h', 'e', '', 'l', 'lo', ' ', 'w', 'o', 'r', '', '', 'ld'], text: 'hello world', reason: 'eos', n: 12 })
  t.same((await run(['world', 'o'])).text, 'hell', 'the earliest occurrence wins')
  t.same(await run(['h']), { deltas: [''], text: '', reason: 'stop', n: 1 })
  t.same((await run([' '])).text, 'hello', 'a space is found at its own token')
  t.same((await run(['xyz'])).reason, 'eos')
})

t.test('deltas always concatenate to the final text, which is the tokens’ own texts joined, cut at a stop', async (t) => {
  const words = createTokenizer('whitespace')
  words.buildVocab(['the quick brown fox jumps over the lazy dog , if you add 1 to 2 you get 3 .'])
  const prompts = ['', 'the lazy', 'you  get ', 'a, b']
  const stops = [[], ['e', 'b '], ['o', 'zz'], [' t', 'og!', 'a'], ['x  y', 'fox j']]
  let stopped = 0
  for (const tokenizer of [tk, words]) {
    const vocab = tokenizer.vocabSize
    const space = tokenizer.enc('a b')[2]
    const logitsFor = historyLogits(vocab)
    for (let seed = 1; seed <= 40; seed++) {
      const prompt = prompts[seed % prompts.length]
      const stop = stops[seed % stops.length]
      const maxNewTokens = seed % 3 === 0 ? 120 : 25 // long outputs go through several committed blocks
      const gen = new Generation(tokenizer, prompt, { maxNewTokens, temperature: 1.5, seed, stop })
      const deltas: string[] = []
      while (!gen.done) {
        // Spaces are frequent (runs of them collapse) and EOS is rare.
        const row = Float32Array.from(logitsFor([...gen.promptIds, ...gen.tokenIds]))
        row[space] += 3
        row[EOS_ID] -= 4
        deltas.push(gen.accept(row).textDelta)
      }
      t.equal(deltas.join(''), gen.text)
      const promptIds = gen.promptIds
      let expected = tokenTexts(tokenizer, [...promptIds, ...gen.tokenIds])!.slice(promptIds.length).join('')
      if (gen.finishReason === 'stop') {
        stopped++
        const at = Math.min(...stop.map((s) => expected.indexOf(s)).filter((i) => i >= 0))
        expected = expected.slice(0, at)
      }
      t.equal(gen.text, expected, `seed ${seed}: ${JSON.stringify(expected)} (${gen.finishReason})`)
    }
  }
  t.ok(stopped > 10, `some runs hit a stop string (${stopped})`)
})

t.test('a stop string is never partly sent, not even while a character is incomplete (issue 13, fault 6)', async (t) => {
  loadGpt2Sync()
  const gpt2 = createTokenizer('gpt2')
  const script = gpt2.enc(' 🎉 🎉 🎉 and so on').slice(1, -1)
  t.ok(script.length > 8, `🎉 is several byte-level tokens (${script.length} tokens)`)
  const bytes: TextCodec = {
    enc: (txt) => [0, ...new TextEncoder().encode(txt).map((b) => b + 4), EOS_ID],
    dec: (ids) => new TextDecoder().decode(Uint8Array.from(ids.filter((id) => id >= 4).map((id) => id - 4))),
  }
  const cases: [string, TextCodec, number[], number][] = [['gpt2', gpt2, script, gpt2.vocabSize], ['bare byte codec', bytes, bytes.enc(' 🎉 🎉 🎉 and so on').slice(1, -1), 260]]
  for (const [what, codec, ids, vocab] of cases) {
    const { eos, pad } = codec.specialIds ?? { eos: EOS_ID, pad: PAD_ID }
    const scripted = () => fakeModel(vocab, scriptedLogits(vocab, 1, ids, eos, pad))
    const events = await collect(generate(scripted(), codec, '', greedy(50, { stop: ['🎉 🎉'] })))
    const deltas = events.map((e) => e.textDelta)
    t.same(deltas.join(''), ' ', `${what}: only the space before the stop string`)
    t.equal(events.at(-1)!.finishReason, 'stop', what)
    const plain = await generateText(scripted(), codec, '', greedy(50))
    t.equal(plain.text, ' 🎉 🎉 🎉 and so on', `${what}: without the stop string, the whole text`)
  }
})

t.test('word tokens: deltas carry the space between words', async (t) => {
  const words = createTokenizer('whitespace')
  words.buildVocab(['hello big world'])
  const ids = words.enc('big world').slice(1, -1)
  const model = fakeModel(words.vocabSize, scriptedLogits(words.vocabSize, 2, ids))
  const events = await collect(generate(model, words, 'hello', greedy(10)))
  t.same(events.map((e) => e.textDelta), [' big', ' world', ''])
})

t.test('byte-level tokens: a character split across tokens is streamed whole', async (t) => {
  // A codec whose tokens are UTF-8 bytes (id = byte + 4): a partial character decodes to U+FFFD.
  const bytes: TextCodec = {
    enc: (txt) => [0, ...new TextEncoder().encode(txt).map((b) => b + 4), EOS_ID],
    dec: (ids) => new TextDecoder().decode(Uint8Array.from(ids.filter((id) => id >= 4).map((id) => id - 4))),
  }
  const text = 'héllo € 𝄞 — naïve ünïcödé text, long enough to commit several blocks: ∑∫≈ 漢字かな 🙂!'
  const script = bytes.enc(text).slice(1, -1)
  const model = fakeModel(260, scriptedLogits(260, 1, script))
  const events = await collect(generate(model, bytes, '', greedy(500)))
  const deltas = events.map((e) => e.textDelta)
  t.equal(deltas.join(''), text)
  t.notOk(deltas.some((d) => d.includes('\uFFFD')), 'no replacement character is streamed')
  t.equal(events[events.length - 1].finishReason, 'eos')
})

t.test('a seed makes sampling reproducible', async (t) => {
  const opts = { maxNewTokens: 30, temperature: 1.2, topK: 20, topP: 0.95, repetitionPenalty: 1.1 }
  const run = (seed: number) => generateText(fakeModel(V, historyLogits(V)), tk, 'the', { ...opts, seed })
  const a = await run(5)
  t.same(await run(5), a)
  t.notSame((await run(6)).tokenIds, a.tokenIds)
  const unseeded = new Generation(tk, 'x', { maxNewTokens: 1 })
  t.ok(Number.isInteger(unseeded.seed), 'a random seed is chosen and reported')
})

t.test('repetition penalty counts the prompt and the output', async (t) => {
  const a = charIds(tk, 'a')[0]
  const b = charIds(tk, 'b')[0]
  const model = fakeModel(V, () => Array.from({ length: V }, (_, v) => (v === a ? 5 : v === b ? 4 : 0)))
  const r = await generateText(model, tk, 'a', greedy(3, { repetitionPenalty: 2 }))
  // a (seen in the prompt) 5 → 2.5 loses to b (4); then both are seen: 2.5 beats 2.
  t.same(r.tokenIds, [b, a, a])
  t.same((await generateText(model, tk, 'a', greedy(2))).tokenIds, [a, a])
})

t.test('Transformer context: a full context slides its window and generation goes on', async (t) => {
  // The fake refuses to see more than maxSeqLen = 8 positions, and its logits depend on the whole history it
  // sees, so a slide shows in the calls: a fresh state fed the last half (4 tokens) of prompt + output.
  const model = fakeModel(V, historyLogits(V), 8)
  const r = await generateText(model, tk, 'hell', greedy(12))
  t.equal(r.tokenIds.length, 12, 'twelve tokens although prompt + output exceed the context')
  t.equal(r.finishReason, 'length')
  const fed = model.calls.map((c) => ({ n: c.ids[0].length, past: c.state[0].dims[1] }))
  t.same(fed[0], { n: 5, past: 0 }, 'prefill [BOS h e l l]')
  t.same(fed.slice(1, 4), [{ n: 1, past: 5 }, { n: 1, past: 6 }, { n: 1, past: 7 }], 'one token a call up to 8 positions')
  t.same(fed[4], { n: 4, past: 0 }, 'then the last 4 tokens from a fresh state')
  const all = [...tk.enc('hell').slice(0, -1), ...r.tokenIds]
  t.same(model.calls[4].ids[0], all.slice(5, 9), 'the slid window is the latest context')
  t.ok(fed.every((f) => f.n + f.past <= 8), 'never more than maxSeqLen positions')
  t.equal((await generateText(fakeModel(V, historyLogits(V), 8), tk, 'hello w', greedy(3))).tokenIds.length, 3,
    'a prompt of exactly maxSeqLen tokens goes on too')
  await t.rejects(generateText(writer('hello wo', 'x', 8), tk, 'hello wo', greedy(3)), { constructor: LmpError, message: "the prompt is 9 tokens but the model's context is 8" })
})

t.test('logprobs: the model’s own log-probability and the top alternatives', async (t) => {
  const model = writer('', 'hi')
  const events = await collect(generate(model, tk, '', greedy(5, { logprobs: 2 })))
  const lse = Math.log(Math.exp(20) + Math.exp(10) + (V - 2))
  t.ok(Math.abs(events[0].logprob! - (10 - lse)) < 1e-6, `${events[0].logprob}`)
  t.same(events[0].topLogprobs!.map((e) => e.tokenId), [PAD_ID, charIds(tk, 'h')[0]], 'PAD is likely but not drawn')
  t.ok(Math.abs(events[0].topLogprobs![0].logprob - (20 - lse)) < 1e-6)
  const plain = await collect(generate(writer('', 'hi'), tk, '', greedy(5)))
  t.equal(plain[0].logprob, undefined)
  const only = await collect(generate(writer('', 'hi'), tk, '', greedy(5, { logprobs: 0 })))
  t.ok(only[0].logprob! < 0)
  t.equal(only[0].topLogprobs, undefined)
})

t.test('leaving the stream stops the model calls', async (t) => {
  const model = writer('', 'hello world')
  let n = 0
  for await (const _event of generate(model, tk, '', greedy(50))) if (++n === 2) break
  t.equal(model.calls.length, 2)
})

t.test('a Generation can be driven by hand (as a batching server does)', async (t) => {
  const gen = new Generation(tk, 'ab', { maxNewTokens: 2, temperature: 0 })
  t.same(gen.inputIds, tk.enc('ab').slice(0, -1))
  const row = new Float32Array(V)
  row[charIds(tk, 'c')[0]] = 3
  const e1 = gen.accept(row)
  t.same(gen.inputIds, [e1.tokenId])
  t.same(e1, { tokenId: charIds(tk, 'c')[0], textDelta: 'c', done: false, token: 'c' })
  const e2 = gen.accept(row)
  t.same([e2.done, e2.finishReason, gen.text, gen.finishReason], [true, 'length', 'cc', 'length'])
  t.throws(() => gen.accept(row))
})

t.test('invalid options throw one-line LmpErrors', async (t) => {
  const bad: [Partial<GenerateOptions>, RegExp][] = [
    [{ maxNewTokens: -1 }, /^max_new_tokens must be an integer >= 0/],
    [{ maxNewTokens: 1.5 }, /^max_new_tokens/],
    [{ stop: [''] }, /^stop must be a list of non-empty strings/],
    [{ stop: 'abc' as unknown as string[] }, /^stop/],
    [{ logprobs: -1 }, /^logprobs/],
    [{ seed: 1.5 }, /^seed must be an integer/],
    [{ topP: 2 }, /^top_p/],
    [{ temperature: -1 }, /^temperature/],
  ]
  for (const [opts, message] of bad) {
    t.throws(() => new Generation(tk, 'a', { maxNewTokens: 5, ...opts }), { constructor: LmpError, message }, JSON.stringify(opts))
  }
})
