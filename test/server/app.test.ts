// HTTP tests of the express app against a real server on 127.0.0.1, with a fake deterministic model
// (test/server/fake-model.ts) and the real tokenizer, generation and scoring code.
import t, { type Test } from 'tap'
import { pino } from 'pino'
import OpenAI from 'openai'
import { createApp, type AppOptions } from '../../server/app.ts'
import { ModelRegistry } from '../../server/models.ts'
import { fakeNll, fakeServedModel } from './fake-model.ts'
import { listen } from './http.ts'

const silent = pino({ level: 'silent' })

async function serve(t: Test, opts: Partial<AppOptions> = {}) {
  const app = createApp({ models: [fakeServedModel('fake'), fakeServedModel('slow', { delayMs: 20 })], logger: silent, ...opts })
  const { base, post } = await listen(t, app)
  return { app, base, post }
}

/** Reads an SSE response: the parsed data payloads, and whether it ended with [DONE]. */
async function readSse(res: Response): Promise<{ events: any[]; done: boolean }> {
  const text = await res.text()
  const events: any[] = []
  let done = false
  for (const block of text.split('\n\n')) {
    if (!block.startsWith('data: ')) continue
    const data = block.slice(6)
    if (data === '[DONE]') done = true
    else events.push(JSON.parse(data))
  }
  return { events, done }
}


t.test('health, models and metrics', async (t) => {
  const { base } = await serve(t)
  const health = await fetch(base + '/health')
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok', models: ['fake', 'slow'], device: 'cpu' })
  t.equal(health.headers.get('cross-origin-opener-policy'), 'same-origin')
  t.equal(health.headers.get('cross-origin-embedder-policy'), 'require-corp')

  const models = await (await fetch(base + '/v1/models')).json()
  t.equal(models.object, 'list')
  t.same(models.data.map((m: any) => m.id), ['fake', 'slow'])
  t.equal(models.data[0].object, 'model')
  t.equal(models.data[0].device, 'cpu')

  const metrics = await (await fetch(base + '/metrics')).text()
  t.match(metrics, /lmp_requests_total\{route="\/health",status="200"\} 1/)
  t.match(metrics, /# TYPE lmp_request_duration_seconds histogram/)
  t.match(metrics, /lmp_queue_depth 0/)
})

t.test('health is 503 while models load', async (t) => {
  const registry = new ModelRegistry([], false)
  const { base, post } = await serve(t, { models: registry })
  t.equal((await fetch(base + '/health')).status, 503)
  const r = await post('/v1/completions', { prompt: 'a' })
  t.equal(r.status, 503)
  t.equal(r.json.error.code, 'loading')
  registry.add(fakeServedModel('late'))
  registry.ready = true
  t.equal((await fetch(base + '/health')).status, 200)
})

t.test('completions: greedy text, finish reasons, usage, echo, n, several prompts', async (t) => {
  const { post } = await serve(t)
  const r = await post('/v1/completions', { model: 'fake', prompt: 'a', max_tokens: 3, temperature: 0 })
  t.equal(r.status, 200)
  t.equal(r.json.object, 'text_completion')
  t.match(r.json.id, /^cmpl-/)
  t.equal(r.json.model, 'fake')
  t.type(r.json.created, 'number')
  t.same(r.json.choices, [{ text: 'bcd', index: 0, logprobs: null, finish_reason: 'length' }])
  // prompt 'a' is [BOS, a] = 2 tokens
  t.same(r.json.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 })

  const toEos = await post('/v1/completions', { prompt: 'e', max_tokens: 50, temperature: 0 })
  t.equal(toEos.json.choices[0].text, 'fgh')
  t.equal(toEos.json.choices[0].finish_reason, 'stop')

  const stop = await post('/v1/completions', { prompt: 'a', max_tokens: 50, temperature: 0, stop: 'e' })
  t.equal(stop.json.choices[0].finish_reason, 'stop')
  t.equal(stop.json.choices[0].text, 'bcd', 'text ends before the stop string')

  const echo = await post('/v1/completions', { prompt: 'ab', max_tokens: 2, temperature: 0, echo: true })
  t.equal(echo.json.choices[0].text, 'abcd')

  const multi = await post('/v1/completions', { prompt: ['a', 'c'], n: 2, max_tokens: 2, temperature: 0 })
  t.same(multi.json.choices.map((c: any) => [c.index, c.text]), [[0, 'bc'], [1, 'bc'], [2, 'de'], [3, 'de']])

  const lp = await post('/v1/completions', { prompt: 'a', max_tokens: 2, temperature: 0, logprobs: 1 })
  const logprobs = lp.json.choices[0].logprobs
  t.same(logprobs.tokens, ['b', 'c'])
  t.same(logprobs.text_offset, [0, 1])
  t.ok(logprobs.token_logprobs.every((x: number) => x < 0 && x > -1), 'favoured tokens are likely')
})

t.test('sampling: the same seed gives the same text; streaming reassembles to it', async (t) => {
  const { base, post } = await serve(t)
  const body = { prompt: 'a', max_tokens: 12, temperature: 3, seed: 7 }
  const a = await post('/v1/completions', body)
  const b = await post('/v1/completions', body)
  t.equal(a.status, 200)
  t.equal(a.json.choices[0].text, b.json.choices[0].text)
  const other = await post('/v1/completions', { ...body, seed: 8, max_tokens: 40 })
  const longer = await post('/v1/completions', { ...body, max_tokens: 40 })
  t.not(other.json.choices[0].text, longer.json.choices[0].text, 'another seed gives another text')

  const res = await fetch(base + '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  const { events, done } = await readSse(res)
  t.ok(done, 'ends with data: [DONE]')
  const chunks = events.filter((e) => e.choices.length)
  t.ok(chunks.length >= 2, 'one chunk per token')
  t.ok(chunks.every((e) => e.object === 'text_completion' && e.id === chunks[0].id))
  t.equal(chunks.map((e) => e.choices[0].text).join(''), a.json.choices[0].text)
  t.equal(chunks.at(-1).choices[0].finish_reason, a.json.choices[0].finish_reason)
  t.same(events.at(-1).usage, a.json.usage)
})

t.test('perplexity, tokenize, detokenize', async (t) => {
  const { post } = await serve(t)
  const tk = await post('/v1/tokenize', { model: 'fake', text: 'abc' })
  t.equal(tk.status, 200)
  t.same(tk.json.tokens, [0, 4, 5, 6, 1])
  t.same(tk.json.strings, ['<bos>', 'a', 'b', 'c', '<eos>'])
  t.equal(tk.json.count, 5)
  const dt = await post('/v1/detokenize', { model: 'fake', tokens: [0, 4, 5, 6, 1] })
  t.same(dt.json, { model: 'fake', text: 'abc' })
  t.equal((await post('/v1/detokenize', { tokens: [99] })).status, 400)

  // Targets a, b, c are the favoured tokens; the EOS after 'c' is not (the model favours 'd').
  const vocab = 12
  const nll = fakeNll(vocab)
  const expected = (3 * nll.favoured + nll.other) / 4
  const p = await post('/v1/perplexity', { model: 'fake', text: 'abc', per_token: true })
  t.equal(p.status, 200)
  t.equal(p.json.object, 'perplexity')
  t.equal(p.json.tokens, 4)
  t.ok(Math.abs(p.json.nats_per_token - expected) < 1e-5, `nats/token ${p.json.nats_per_token} ≈ ${expected}`)
  t.ok(Math.abs(p.json.total_nll - 4 * expected) < 1e-4)
  t.ok(Math.abs(p.json.perplexity - Math.exp(expected)) < 1e-4)
  t.ok(Math.abs(p.json.bits_per_token - expected / Math.LN2) < 1e-5)
  t.same(p.json.per_token.map((x: any) => x.token), ['a', 'b', 'c', '<eos>'])
  const alt = await post('/v1/perplexity', { model: 'fake', text: 'abc', top_logprobs: 2 })
  t.same(alt.json.per_token[0].top_logprobs.map((x: any) => x.token), ['a', '<bos>'], 'the favoured token first, then the lowest id')
})

t.test('bad input: 4xx JSON errors, never a 5xx', async (t) => {
  const { base, post } = await serve(t, { limits: { bodyBytes: 10_000 } })
  const cases: [string, unknown, number, string | null][] = [
    ['invalid JSON', '{"prompt": "a",', 400, null],
    ['not an object', '[1,2]', 400, null],
    ['a bare string', '"hello"', 400, null],
    ['missing prompt', { max_tokens: 3 }, 400, 'prompt'],
    ['negative max_tokens', { prompt: 'a', max_tokens: -1 }, 400, 'max_tokens'],
    ['max_tokens as a string', { prompt: 'a', max_tokens: '3' }, 400, 'max_tokens'],
    ['fractional max_tokens', { prompt: 'a', max_tokens: 1.5 }, 400, 'max_tokens'],
    ['huge max_tokens', { prompt: 'a', max_tokens: 1e300 }, 400, 'max_tokens'],
    ['prompt as a number', { prompt: 5 }, 400, 'prompt'],
    ['prompt as an empty array', { prompt: [] }, 400, 'prompt'],
    ['temperature below 0', { prompt: 'a', temperature: -1 }, 400, 'temperature'],
    ['top_p above 1', { prompt: 'a', top_p: 2 }, 400, 'top_p'],
    ['stream as a string', { prompt: 'a', stream: 'yes' }, 400, 'stream'],
    ['five stop strings', { prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] }, 400, 'stop'],
    ['unsupported presence_penalty', { prompt: 'a', presence_penalty: 1 }, 400, 'presence_penalty'],
    ['unknown model', { model: 'nope', prompt: 'a' }, 404, 'model'],
    ['a path as model', { model: '../../etc/passwd', prompt: 'a' }, 404, 'model'],
  ]
  for (const [what, body, status, param] of cases) {
    const r = await post('/v1/completions', body)
    t.equal(r.status, status, `${what}: status`)
    t.type(r.json?.error?.message, 'string', `${what}: message`)
    t.notMatch(r.json?.error?.message ?? '', /\n|at .*\.ts/, `${what}: one line, no stack`)
    if (param) t.equal(r.json.error.param, param, `${what}: param`)
  }
  t.match((await post('/v1/completions', { prompt: 'a', max_tokens: -1 })).json.error.message, /max_tokens must be >= 0/)
  t.equal((await post('/v1/completions', { prompt: 'x'.repeat(20_000) })).status, 413, 'body over the limit')
  t.equal((await post('/v1/perplexity', {})).json.error.param, 'text')
  t.equal((await post('/v1/tokenize', {})).json.error.param, 'text')
  t.equal((await post('/v1/nope', {})).status, 404)
  const plain = await fetch(base + '/v1/completions', { method: 'POST', body: '{"prompt":"a","max_tokens":1}' })
  t.equal(plain.status, 415, 'a JSON body without a JSON content type is refused (test/server/security.test.ts)')
  t.equal((await fetch(base + '/health')).status, 200, 'still healthy')
})

t.test('caps: prompt tokens and choices', async (t) => {
  const { post } = await serve(t, { limits: { maxPromptTokens: 5, maxChoices: 4 } })
  const long = await post('/v1/completions', { prompt: 'abcdefgh' })
  t.equal(long.status, 400)
  t.equal(long.json.error.code, 'prompt_too_long')
  t.equal((await post('/v1/completions', { prompt: ['a', 'b', 'c'], n: 2 })).status, 400)
})

t.test('--api-key: bearer token on /v1 and /metrics, /health stays open', async (t) => {
  const { base, post } = await serve(t, { apiKey: 'sekrit' })
  t.equal((await fetch(base + '/health')).status, 200)
  const none = await post('/v1/completions', { prompt: 'a', max_tokens: 1 })
  t.equal(none.status, 401)
  t.equal(none.json.error.type, 'authentication_error')
  t.equal((await post('/v1/completions', { prompt: 'a', max_tokens: 1 }, { authorization: 'Bearer wrong' })).status, 401)
  t.equal((await post('/v1/completions', { prompt: 'a', max_tokens: 1 }, { authorization: 'Bearer sekrit' })).status, 200)
  t.equal((await fetch(base + '/metrics')).status, 401)
  t.equal((await fetch(base + '/v1/models', { headers: { authorization: 'Bearer sekrit' } })).status, 200)
})

t.test('the official openai client works unchanged', async (t) => {
  const { base } = await serve(t, { apiKey: 'k' })
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'k', maxRetries: 0 })
  const plain = await client.completions.create({ model: 'fake', prompt: 'a', max_tokens: 4, temperature: 0 })
  t.equal(plain.choices[0].text, 'bcde')
  t.equal(plain.usage?.completion_tokens, 4)
  const stream = await client.completions.create({ model: 'fake', prompt: 'a', max_tokens: 4, temperature: 0, stream: true })
  let text = ''
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? ''
  t.equal(text, 'bcde')
  const err = await client.completions.create({ model: 'fake', prompt: 'a', max_tokens: -2 }).catch((e: unknown) => e)
  t.equal((err as { status?: number }).status, 400, 'a 400 reaches the client as an APIError')
})

t.test('a client that disconnects mid-stream stops its generation', async (t) => {
  const { app, base } = await serve(t)
  const slow = (app.locals.registry.get('slow')!.model as any)
  const controller = new AbortController()
  const res = await fetch(base + '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'slow', prompt: 'a', max_tokens: 2000, temperature: 2, seed: 1, stream: true }),
    signal: controller.signal,
  })
  const reader = res.body!.getReader()
  await reader.read() // the first chunk arrived: generation runs
  t.equal(app.locals.engine.active, 1)
  controller.abort()
  const callsAtAbort = slow.calls
  const deadline = Date.now() + 2000
  while (app.locals.engine.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  t.equal(app.locals.engine.active, 0, 'the generation ended')
  t.ok(slow.calls - callsAtAbort <= 2, `at most one more model call after the disconnect (${slow.calls - callsAtAbort})`)
})
