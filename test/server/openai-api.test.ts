// The OpenAI API as evaluation harnesses and chat clients use it (issue 13): each numbered fault's input
// with the right value over HTTP, chat completions, scoring with echo + logprobs, token texts and offsets,
// --cors. Models: scripted fakes over real tokenizers of all four kinds (src/infer's generation and scoring
// are real), and a real exported LSTM (onnxruntime-node) for the checks that need real logits.
import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { pino } from 'pino'
import OpenAI from 'openai'
import fc from 'fast-check'
import { createApp, type AppOptions } from '../../server/app.ts'
import { loadExperimentModel, type ServedModel } from '../../server/models.ts'
import { demoSamples } from '../../src/data/demo.ts'
import { createTokenizer, EOS_ID, type Tokenizer } from '../../src/tokenizer/index.ts'
import { loadGpt2Sync } from '../../src/tokenizer/io.ts'
import type { Gpt2Tokenizer } from '../../src/tokenizer/gpt2.ts'
import { fakeModel, scriptedLogits, type LogitsFn } from '../infer/fakes.ts'
import { writeExportedModel } from './exported-model.ts'
import { listen, readStream, sseEvents } from './http.ts'
import { isOneLineError, lmp } from '../helpers/cli.ts'

const silent = pino({ level: 'silent' })
loadGpt2Sync()

const PROMPT = 'If you add 3 to 4 you get'

function served(name: string, tokenizer: Tokenizer, logitsFor: LogitsFn, files?: ServedModel['files']): ServedModel {
  const model = fakeModel(tokenizer.vocabSize, logitsFor)
  return { name, tokenizer, model, manifest: model.manifest, files }
}

const chars = createTokenizer('character')
chars.buildVocab([...demoSamples('train').slice(0, 300), 'User: Assistant: System: hello what more'])
const gpt2 = createTokenizer('gpt2') as Gpt2Tokenizer

/** The ids of `text` as the character tokenizer spells it, spaces included (enc strips the ends). */
const charIds = (text: string) => [...text].map((c) => (c === ' ' ? chars.enc('a b')[2] : chars.enc(c)[1]))

/** After PROMPT, writes ' 33 .' then EOS. */
const demoLike = served('demo', chars, scriptedLogits(chars.vocabSize, chars.enc(PROMPT).length - 1, charIds(' 33 .')))

/** Writes REPLY after each ':' it reads (the chat prompt ends with 'Assistant:'), then EOS. */
const REPLY = ' 7 . User: and more'
const colon = chars.enc(':')[1]
const replyIds = charIds(REPLY)
const chatty = served('chatty', chars, (h) => {
  const k = h.length - 1 - h.lastIndexOf(colon)
  const want = h.lastIndexOf(colon) < 0 ? EOS_ID : replyIds[k] ?? EOS_ID
  return Array.from({ length: chars.vocabSize }, (_, v) => (v === want ? 8 : 0))
})

/** A gpt2-tokenizer model that writes ' 🎉 🎉 🎉 and so on' after BOS. */
const partyIds = gpt2.enc(' 🎉 🎉 🎉 and so on').slice(1, -1)
const party = served('party', gpt2, scriptedLogits(gpt2.vocabSize, 1, partyIds, gpt2.specialIds.eos, gpt2.specialIds.pad))

async function serve(t: Test, models: ServedModel[], opts: Partial<AppOptions> = {}) {
  const app = createApp({ models, logger: silent, ...opts })
  return listen(t, app)
}

t.test('fault 1: POST /v1/chat/completions exists, plain and streaming, in OpenAI’s shapes', async (t) => {
  const { base, post } = await serve(t, [chatty])
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello' }]
  const r = await post('/v1/chat/completions', { model: 'chatty', messages, temperature: 0 })
  t.equal(r.status, 200)
  t.equal(r.json.object, 'chat.completion')
  t.match(r.json.id, /^chatcmpl-/)
  t.same(r.json.choices, [{ index: 0, message: { role: 'assistant', content: ' 7 .' }, logprobs: null, finish_reason: 'stop' }],
    'the reply stops where the model starts the next user turn')
  // 'System: Be brief.\nUser: hello\nAssistant:' is 40 characters, after BOS; the reply's 10 tokens run
  // to the ':' of ' User:'.
  t.same(r.json.usage, { prompt_tokens: 41, completion_tokens: 10, total_tokens: 51 })

  const res = await fetch(base + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'chatty', messages, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  })
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  const events: any[] = []
  for await (const ev of sseEvents(res)) events.push(ev)
  t.equal(events.at(-1), 'DONE')
  const chunks = events.filter((e) => e !== 'DONE' && e.choices.length)
  t.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id))
  t.same(chunks[0].choices[0].delta, { role: 'assistant', content: '' })
  t.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), ' 7 .')
  t.same(chunks.at(-1).choices[0], { index: 0, delta: {}, logprobs: null, finish_reason: 'stop' })
  t.same(events.at(-2).usage, r.json.usage)

  const lp = await post('/v1/chat/completions', { model: 'chatty', messages, temperature: 0, logprobs: true, top_logprobs: 2 })
  const content = lp.json.choices[0].logprobs.content
  t.same(content.map((c: any) => c.token), [' ', '7', ' ', '.'], 'tokens of the reply, cut before the stop string')
  t.same(content[1].bytes, [55])
  t.equal(content[1].top_logprobs[0].token, '7')

  const bad = [
    [{ messages: [] }, 'messages'],
    [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages'],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, 'messages'],
    [{ messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }, 'tools'],
  ] as const
  for (const [body, param] of bad) {
    const e = await post('/v1/chat/completions', body)
    t.equal(e.status, 400, JSON.stringify(body))
    t.equal(e.json.error.param, param)
  }
})

t.test('chat logprobs: each token’s own bytes, so a character split across byte-level tokens loses none', async (t) => {
  const gpt2Colon = gpt2.enc(':')[1]
  const m = served('party-chat', gpt2, (h) => {
    const want = partyIds[h.length - 1 - h.lastIndexOf(gpt2Colon)] ?? gpt2.specialIds.eos
    const row = new Array(gpt2.vocabSize).fill(0)
    row[want] = 12
    return row
  })
  const { post } = await serve(t, [m])
  const r = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'party?' }], temperature: 0, logprobs: true, top_logprobs: 2, max_tokens: 40 })
  const reply = r.json.choices[0].message.content
  const content = r.json.choices[0].logprobs.content
  t.equal(reply, ' 🎉 🎉 🎉 and so on')
  t.equal(content.map((c: any) => c.token).join(''), reply)
  t.ok(content.some((c: any) => c.token === '' && c.bytes.length > 0), 'a token with part of 🎉 has text "" but its bytes')
  t.same(content.flatMap((c: any) => c.bytes), Array.from(new TextEncoder().encode(reply)), 'the bytes, joined, are the reply')
})

t.test('chat templates: the model’s own Jinja template from tokenizer_config.json', async (t) => {
  const dir = t.testdir({ onnx: {} })
  const template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}|{% endfor %}{% if add_generation_prompt %}<assistant>:{% endif %}"
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: template, eos_token: '<eos>' }))
  const files = { manifest: path.join(dir, 'onnx', 'manifest.json'), model: '', tokenizer: '' }
  // Writes ' 7 .|<user>' after the template's ':'; the template's next turn starts with '|<user>'.
  const replyIds = charIds(' 7 .|<user>')
  const model = served('templated', chars, (h) => {
    const k = h.length - 1 - h.lastIndexOf(colon)
    return Array.from({ length: chars.vocabSize }, (_, v) => (v === (replyIds[k] ?? EOS_ID) ? 8 : 0))
  }, files)
  const { post } = await serve(t, [model])
  const r = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hello' }], temperature: 0 })
  t.equal(r.status, 200)
  t.equal(r.json.choices[0].message.content, ' 7 .')
  t.equal(r.json.usage.prompt_tokens, 1 + '<user>hello|<assistant>:'.length, 'the prompt is the rendered template')

  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{% for m in messages %}' }))
  const broken = served('broken', chars, () => [], { ...files })
  const { post: post2 } = await serve(t, [broken])
  const e = await post2('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] })
  t.equal(e.status, 500)
  t.match(e.json.error.message, /^the chat template in .*tokenizer_config\.json cannot be used/)
})

t.test('faults 2 and 3: echo + logprobs scores the prompt; each token is its own text at its own offset', async (t) => {
  const { post } = await serve(t, [demoLike])
  const scoring = { model: 'demo', prompt: 'If you add 3 to 4 you get 7 .', echo: true, logprobs: 1, max_tokens: 0, temperature: 0 }
  const r = await post('/v1/completions', scoring)
  t.equal(r.status, 200)
  const lp = r.json.choices[0].logprobs
  t.equal(r.json.choices[0].text, scoring.prompt)
  t.equal(lp.tokens.length, scoring.prompt.length, 'one entry per prompt token (was none)')
  t.equal(lp.tokens.join(''), scoring.prompt)
  t.ok(lp.token_logprobs.every((x: number) => typeof x === 'number' && x < 0), 'every token has its log-probability given the tokens before it')
  t.equal(r.json.choices[0].finish_reason, 'length')

  // The same numbers as /v1/perplexity for the same tokens (it also scores the final EOS).
  const ppl = await post('/v1/perplexity', { model: 'demo', text: scoring.prompt, per_token: true })
  t.equal(ppl.json.per_token.length, lp.tokens.length + 1)
  lp.token_logprobs.forEach((x: number, i: number) => t.ok(Math.abs(x - ppl.json.per_token[i].logprob) < 1e-9, `token ${i}`))

  // lm-evaluation-harness's default token-id prompts: a 400 before.
  const ids = (await post('/v1/tokenize', { model: 'demo', text: scoring.prompt })).json.tokens.slice(0, -1) // [BOS, ...]
  const byIds = await post('/v1/completions', { ...scoring, prompt: ids })
  t.equal(byIds.status, 200)
  const idLp = byIds.json.choices[0].logprobs
  t.equal(idLp.tokens.length, ids.length, 'the ids as sent, BOS among them')
  t.equal(idLp.token_logprobs[0], null, 'nothing predicts the first token')
  t.same(idLp.token_logprobs.slice(1), lp.token_logprobs)
  const noBos = await post('/v1/completions', { ...scoring, prompt: ids.slice(1) })
  t.same(noBos.json.choices[0].logprobs.token_logprobs, lp.token_logprobs, 'ids without BOS are read after one')
  const several = await post('/v1/completions', { ...scoring, prompt: [ids, ids.slice(1, 4)] })
  t.equal(several.json.choices.length, 2)
  t.equal((await post('/v1/completions', { ...scoring, prompt: [0, 99999] })).status, 400, 'an id outside the vocabulary')

  // Fault 3: the space token is ' ', at its own offset.
  const gen = await post('/v1/completions', { model: 'demo', prompt: PROMPT, echo: true, logprobs: 1, max_tokens: 3, temperature: 0 })
  const g = gen.json.choices[0]
  t.equal(g.text, PROMPT + ' 33')
  t.same(g.logprobs.tokens.slice(-3), [' ', '3', '3'])
  t.same(g.logprobs.text_offset.slice(-3), [25, 26, 27])
  t.equal(g.logprobs.tokens.join(''), g.text)
  g.logprobs.tokens.forEach((tok: string, i: number) => t.equal(g.text.slice(g.logprobs.text_offset[i], g.logprobs.text_offset[i] + tok.length), tok))
  // The fake favours PAD (never generated) most: it is listed too, under its name, beside the chosen token.
  t.same(g.logprobs.top_logprobs.slice(-3).map((o: object) => Object.keys(o).sort()), [[' ', '<pad>'], ['3', '<pad>'], ['3', '<pad>']])
  g.logprobs.top_logprobs.forEach((o: Record<string, number>, i: number) => t.equal(o[g.logprobs.tokens[i]], g.logprobs.token_logprobs[i]))
  // The same texts in /v1/tokenize and /v1/perplexity (specials by name).
  t.same((await post('/v1/tokenize', { model: 'demo', text: 'get 3' })).json.strings, ['<bos>', 'g', 'e', 't', ' ', '3', '<eos>'])
  t.same((await post('/v1/perplexity', { model: 'demo', text: 'get 3', per_token: true })).json.per_token.map((p: any) => p.token), ['g', 'e', 't', ' ', '3', '<eos>'])
  const plain = await post('/v1/completions', { model: 'demo', prompt: PROMPT, logprobs: 0, max_tokens: 3, temperature: 0 })
  t.same(plain.json.choices[0].logprobs.text_offset, [0, 1, 2])
})

t.test('fault 3: BPE word-final tokens read apart from the same piece inside a word; whitespace words carry their space', async (t) => {
  const bpe = createTokenizer('BPE', { nMerge: 200 })
  bpe.buildVocab(demoSamples('train').slice(0, 300))
  const words = createTokenizer('whitespace')
  words.buildVocab(demoSamples('train').slice(0, 300))
  const id = (tk: Tokenizer, tok: string) => (tk as unknown as { tk2id: Map<string, number> }).tk2id.get(tok)!
  // The model favours '1<eow>' most, then '1' (mid-word).
  const bpeModel = served('bpe', bpe, () => Array.from({ length: bpe.vocabSize }, (_, v) => (v === id(bpe, '1<eow>') ? 6 : v === id(bpe, '1') ? 5 : 0)))
  const wordModel = served('words', words, () => Array.from({ length: words.vocabSize }, (_, v) => (v === id(words, '7') ? 6 : 0)))
  const { post } = await serve(t, [bpeModel, wordModel])
  const b = (await post('/v1/completions', { model: 'bpe', prompt: 'you get', max_tokens: 2, temperature: 0, logprobs: 2 })).json.choices[0]
  t.same(b.logprobs.tokens, ['1 ', '1 '])
  t.equal(b.text, '1 1 ')
  t.same(Object.keys(b.logprobs.top_logprobs[0]).sort(), ['1', '1 '], 'two keys, not one')
  const w = (await post('/v1/completions', { model: 'words', prompt: 'you get', max_tokens: 2, temperature: 0, logprobs: 1, echo: true })).json.choices[0]
  t.same(w.logprobs.tokens, ['you', ' get', ' 7', ' 7'])
  t.same(w.logprobs.text_offset, [0, 3, 7, 9])
  t.equal(w.text, 'you get 7 7')
})

t.test('fault 4: top_logprobs lists every alternative under its own key, the chosen token with its own value', async (t) => {
  // Six byte-level tokens that each hold the first part of a multi-byte character: alike as text ('').
  const partial: number[] = []
  for (let v = 4; partial.length < 6; v++) {
    const bytes = gpt2.tokenBytes(v)
    if (bytes && bytes.length === 1 && bytes[0] >= 0xc2 && bytes[0] <= 0xf4) partial.push(v)
  }
  const m = served('emoji', gpt2, () => {
    const row = new Array(gpt2.vocabSize).fill(0)
    partial.forEach((v, i) => (row[v] = 10 - i * 0.5))
    return row
  })
  const { post } = await serve(t, [m])
  const r = await post('/v1/completions', { model: 'emoji', prompt: 'party', max_tokens: 3, temperature: 0, logprobs: 5 })
  const lp = r.json.choices[0].logprobs
  for (let i = 0; i < 3; i++) {
    t.equal(Object.keys(lp.top_logprobs[i]).length, 5, `position ${i}: 5 entries`)
    t.equal(lp.top_logprobs[i][lp.tokens[i]], lp.token_logprobs[i], `position ${i}: the chosen token shows its own value`)
  }
  t.ok(Object.keys(lp.top_logprobs[1]).some((k) => k.startsWith('bytes:\\x')), 'incomplete tokens are spelled as OpenAI spells bytes')
  t.equal(lp.tokens.join(''), r.json.choices[0].text)
})

t.test('faults 5, 7, 8 on a real exported model: tiny temperatures, seeds with n > 1, prompt tokens counted once', async (t) => {
  const { dir } = await writeExportedModel(t.testdir({}), 'tiny', 3)
  const real = await loadExperimentModel(dir)
  t.teardown(() => real.model.release?.())
  const { post } = await serve(t, [real])
  const greedy = (await post('/v1/completions', { prompt: PROMPT, max_tokens: 12, temperature: 0 })).json.choices[0].text
  for (const temperature of [1e-39, 1e-37, 1e-45, 1e-20]) {
    const r = await post('/v1/completions', { prompt: PROMPT, max_tokens: 12, temperature, seed: 2 })
    t.equal(r.json.choices[0].text, greedy, `temperature ${temperature} is greedy`)
  }

  const big = await post('/v1/completions', { prompt: 'If you add', max_tokens: 6, seed: 9007199254740991, n: 2 })
  t.equal(big.status, 200, 'the largest seed with n = 2 (was a 400 about 9007199254740992)')
  t.equal(big.json.choices.length, 2)
  const wrapped = await post('/v1/completions', { prompt: 'If you add', max_tokens: 6, seed: 0 })
  t.equal(big.json.choices[1].text, wrapped.json.choices[0].text, 'the second choice wraps to seed 0')
  const same = await post('/v1/completions', { prompt: 'If you add', max_tokens: 6, seed: 9007199254740991 })
  t.equal(big.json.choices[0].text, same.json.choices[0].text)

  const one = await post('/v1/completions', { prompt: 'If you add', max_tokens: 2, temperature: 0 })
  const three = await post('/v1/completions', { prompt: 'If you add', max_tokens: 2, n: 3, temperature: 0 })
  t.equal(one.json.usage.prompt_tokens, 11, 'BOS + 10 characters')
  t.equal(three.json.usage.prompt_tokens, 11, 'once, not n times')
  t.equal(three.json.usage.completion_tokens, 3 * one.json.usage.completion_tokens)
  const two = await post('/v1/completions', { prompt: ['If you add', 'If'], max_tokens: 2, n: 2 })
  t.equal(two.json.usage.prompt_tokens, 14, 'each prompt once')
})

t.test('fault 6: nothing of a stop string is sent, plain or streaming', async (t) => {
  const { post, stream } = await serve(t, [party])
  const body = { model: 'party', prompt: '', max_tokens: 30, temperature: 0, stop: '🎉 🎉' }
  const r = await post('/v1/completions', body)
  t.equal(r.json.choices[0].text, ' ')
  t.equal(r.json.choices[0].finish_reason, 'stop')
  const s = await readStream((await stream(body)).events)
  t.equal(s.text, ' ')
  t.equal(s.finish, 'stop')
  const whole = await post('/v1/completions', { ...body, stop: null })
  t.equal(whole.json.choices[0].text, ' 🎉 🎉 🎉 and so on')
  // text_offset counts characters as OpenAI's and vLLM's servers do: code points ('🎉' is one).
  const all = (await post('/v1/completions', { ...body, stop: null, logprobs: 0 })).json.choices[0].logprobs
  t.equal(all.tokens.join(''), ' 🎉 🎉 🎉 and so on')
  t.equal(all.text_offset[all.tokens.indexOf(' and')], 6)
  t.equal(all.tokens.filter((x: string) => x.includes('🎉')).length, 3, 'each 🎉 whole in the token that completes it')
  const lp = await post('/v1/completions', { ...body, logprobs: 1 })
  t.equal(lp.json.choices[0].logprobs.tokens.join(''), ' ', 'the logprobs tokens stop where the text does')
})

t.test('--cors: off by default; the given origin may call /v1 from a browser', async (t) => {
  const preflight = (base: string, origin: string) => fetch(base + '/v1/chat/completions', {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
  })
  const off = await serve(t, [chatty])
  t.equal((await preflight(off.base, 'https://app.example')).headers.get('access-control-allow-origin'), null)
  const on = await serve(t, [chatty], { cors: ['https://app.example'], apiKey: 'k' })
  const ok = await preflight(on.base, 'https://app.example')
  t.ok(ok.status === 204 || ok.status === 200, `preflight ${ok.status}, before the API key check`)
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example')
  t.match(ok.headers.get('access-control-allow-headers') ?? '', /authorization/i)
  t.equal((await preflight(on.base, 'https://evil.example')).headers.get('access-control-allow-origin'), null)
  const bad = lmp(['serve', '--exp', 'none', '--cors', 'app.example/path'])
  t.ok(isOneLineError(bad), bad.stderr)
  t.match(bad.stderr, /--cors must be an origin like https:\/\/app.example:8443 or '\*', got 'app.example\/path'/)
  const res = await on.post('/v1/completions', { prompt: 'a', max_tokens: 1 }, { origin: 'https://app.example', authorization: 'Bearer k' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example')
})

t.test('the official openai client: chat plain and streaming; an lm-evaluation-harness loglikelihood loop', async (t) => {
  const { dir } = await writeExportedModel(t.testdir({}), 'tiny', 1)
  const real = await loadExperimentModel(dir)
  t.teardown(() => real.model.release?.())
  const { base, post } = await serve(t, [real, chatty])
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused', maxRetries: 0 })

  const chat = await client.chat.completions.create({ model: 'chatty', messages: [{ role: 'user', content: 'hello' }], temperature: 0 })
  t.equal(chat.choices[0].message.content, ' 7 .')
  t.equal(chat.choices[0].finish_reason, 'stop')
  const stream = await client.chat.completions.create({ model: 'chatty', messages: [{ role: 'user', content: 'hello' }], temperature: 0, stream: true })
  let text = ''
  let finish: string | null = null
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? ''
    finish = chunk.choices[0]?.finish_reason ?? finish
  }
  t.same([text, finish], [' 7 .', 'stop'])

  // lm-evaluation-harness's loglikelihood request: context + continuation, echo, logprobs, max_tokens 0;
  // it sums token_logprobs from the context's length on. String prompts and token-id prompts.
  const requests: [string, string][] = [['If you add 3 to 4 you get', ' 7 .'], ['If you add 12 to 30', ' you get 42 .'], ['x', 'yz q']]
  for (const [context, continuation] of requests) {
    const tokens = async (text: string) => (await post('/v1/tokenize', { model: 'tiny', text })).json.tokens.slice(1, -1) as number[]
    const ctxIds = await tokens(context)
    const allIds = await tokens(context + continuation)
    const reference = (await post('/v1/perplexity', { model: 'tiny', text: context + continuation, per_token: true })).json.per_token
    for (const prompt of [context + continuation, allIds]) {
      const r = await client.completions.create({ model: 'tiny', prompt, echo: true, logprobs: 1, max_tokens: 0, temperature: 0 })
      const lp = r.choices[0].logprobs!
      t.equal(lp.tokens!.length, allIds.length)
      lp.token_logprobs!.forEach((x, i) => {
        if (!(Math.abs(x - reference[i].logprob) < 1e-5)) t.fail(`${JSON.stringify(context)} token ${i}: ${x} vs ${reference[i].logprob}`)
      })
      const continuationLogprob = lp.token_logprobs!.slice(ctxIds.length).reduce((a, b) => a + b, 0)
      const expected = reference.slice(ctxIds.length, allIds.length).reduce((a: number, p: { logprob: number }) => a + p.logprob, 0)
      t.ok(Math.abs(continuationLogprob - expected) < 1e-5, `${typeof prompt === 'string' ? 'text' : 'ids'} ${JSON.stringify(continuation)}: ${continuationLogprob} ≈ ${expected}`)
      // is_greedy as the harness computes it compares each token with its position's most likely key: the
      // chosen token is listed under the same text as in `tokens`, with its own value.
      const top = lp.top_logprobs as Record<string, number>[]
      lp.tokens!.forEach((tok, i) => {
        if (i === 0) return
        if (top[i][tok] !== lp.token_logprobs![i]) t.fail(`position ${i}: ${JSON.stringify(tok)} is listed as ${top[i][tok]}, not ${lp.token_logprobs![i]}`)
        const [bestKey, bestValue] = Object.entries(top[i]).sort((a, b) => b[1] - a[1])[0]
        if (bestValue === lp.token_logprobs![i] && bestKey !== tok) t.fail(`position ${i}: the most likely key ${JSON.stringify(bestKey)} is not the token ${JSON.stringify(tok)}`)
      })
    }
  }
})

t.test('hostile chat bodies: 4xx JSON errors, never a 5xx', async (t) => {
  const { post } = await serve(t, [chatty])
  const value = fc.oneof(
    fc.constantFrom(null, true, 0, -1, 1.5, 1e308, '', 'user', '<bos>', [], {}, [{ type: 'text', text: 'hi' }], [{ type: 'text' }]),
    fc.string({ maxLength: 20 }),
    fc.integer(),
  )
  const message = fc.dictionary(fc.constantFrom('role', 'content', 'name', 'tool_calls'), value, { maxKeys: 3 })
  const body = fc.record({
    messages: fc.oneof(fc.array(message, { maxLength: 3 }), value),
    extra: fc.dictionary(fc.constantFrom('max_tokens', 'temperature', 'n', 'stop', 'seed', 'logprobs', 'top_logprobs', 'stream', 'tools', 'response_format', 'model'), value, { maxKeys: 3 }),
  }).map(({ messages, extra }) => ({ max_tokens: 3, ...extra, messages }))
  await fc.assert(fc.asyncProperty(body, async (b) => {
    const r = await post('/v1/chat/completions', b)
    if (r.status >= 500 || (r.status >= 400 && typeof r.json?.error?.message !== 'string')) t.fail(`${r.status} for ${JSON.stringify(b)}: ${r.text.slice(0, 200)}`)
    return r.status < 500
  }), { numRuns: 150, seed: 13 })
})
