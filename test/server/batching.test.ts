// The batching engine over HTTP on 127.0.0.1: concurrent requests share forward calls and still get the
// text they would get alone (a real LSTM and a real Transformer in onnxruntime-node, the Transformer's
// rows with caches of different lengths in one call; and a Transformer-shaped fake without an attention
// mask, which batches only equal cache lengths); requests join and leave between steps; a full queue is a 429 with Retry-After; a client that
// drops frees its slot within one step; the per-request timeout; /metrics; structured logs; metrics.jsonl.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createApp } from '../../server/app.ts'
import { loadExperimentModel, type ServedModel } from '../../server/models.ts'
import { generateText } from '../../src/infer/generate.ts'
import type { StepModel } from '../../src/infer/types.ts'
import { writeExportedModel } from './exported-model.ts'
import { fakeKvModel, fakeServedModel, fakeTokenizer } from './fake-model.ts'
import { listen, readStream, until } from './http.ts'

const silent = pino({ level: 'silent' })
const root = t.testdir({})
const { dir } = await writeExportedModel(root, 'tiny', 3)

/** The model with every forward call's row count recorded (and each call delayed by `delayMs`). */
function recording(m: ServedModel, delayMs = 0): ServedModel & { rows: number[]; padded: boolean[] } {
  const rows: number[] = []
  const padded: boolean[] = [] // whether the call had rows with padded caches
  const model: StepModel = {
    manifest: m.model.manifest,
    initState: (b) => m.model.initState(b),
    forward: async (ids, state, pastPadding) => {
      rows.push(ids.length)
      padded.push(pastPadding?.some((n) => n > 0) ?? false)
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs))
      return m.model.forward(ids, state, pastPadding)
    },
  }
  return { ...m, model, rows, padded }
}

t.test('concurrent requests share forward calls and get the text they get alone (real LSTM)', async (t) => {
  const real = await loadExperimentModel(dir)
  const m = recording(real)
  const { post, stream } = await listen(t, createApp({ models: [m], logger: silent }))
  // Prompts of different lengths (two of equal length, prefilled together), sampled with seeds.
  const prompts = ['If you add 3 to 4', 'If you add 3 to 5', 'If', 'If you add 12 to 30 you get', 'abc', 'If you add 3 to 4']
  const params = (i: number) => ({ max_tokens: 25 + i, temperature: i === 0 ? 0 : 1.5, seed: 100 + i, top_k: i === 2 ? 5 : 0 })
  const expected = await Promise.all(prompts.map((p, i) => generateText(real.model, real.tokenizer, p, {
    maxNewTokens: params(i).max_tokens, temperature: params(i).temperature, seed: params(i).seed, topK: params(i).top_k,
  })))
  m.rows.length = 0
  const results = await Promise.all(prompts.map(async (prompt, i) => {
    if (i % 2) return readStream((await stream({ prompt, ...params(i) })).events).then((r) => r.text)
    return post('/v1/completions', { prompt, ...params(i) }).then((r) => r.json.choices[0].text)
  }))
  t.same(results, expected.map((e) => e.text), 'each text equals generateText alone, streaming or not')
  const tokens = expected.reduce((a, e) => a + e.tokenIds.length, 0)
  t.ok(Math.max(...m.rows) >= 4, `decode steps were batched (largest call: ${Math.max(...m.rows)} rows)`)
  t.ok(m.rows.length < tokens / 2, `${m.rows.length} forward calls for ${tokens} tokens`)
})

t.test('real Transformer: requests that join while others decode share their calls (padded caches) and get the text they get alone', async (t) => {
  const { dir: gptDir } = await writeExportedModel(root, 'gpt', 5, { model: 'Transformer', dModel: 16, nHead: 2, dFf: 32, nLyr: 2, maxSeqLen: 32, p: 0 })
  const real = await loadExperimentModel(gptDir)
  const m = recording(real, 2) // slow enough that the requests overlap whatever the machine's speed
  const { stream } = await listen(t, createApp({ models: [m], logger: silent }))
  const prompts = ['If you add 3 to 4', 'If', 'If you add 12 to 30 you get', 'abc']
  // The first prompt (17 tokens) and its output outgrow the 32-position window, which slides: a fresh
  // prefill in the middle of the batch.
  const params = (i: number) => ({ max_tokens: i === 0 ? 60 : 20, temperature: i === 1 ? 0 : 1.2, seed: 7 + i })
  const expected = await Promise.all(prompts.map((p, i) => generateText(real.model, real.tokenizer, p, {
    maxNewTokens: params(i).max_tokens, temperature: params(i).temperature, seed: params(i).seed,
  })))
  m.rows.length = 0
  m.padded.length = 0
  // The first request decodes alone for a few tokens; the others join it then, one after another.
  const first = await stream({ prompt: prompts[0], ...params(0) })
  const texts: Promise<string>[] = [readStream(first.events).then((r) => r.text)]
  for (let i = 1; i < prompts.length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 6))
    texts.push(stream({ prompt: prompts[i], ...params(i) }).then((s) => readStream(s.events)).then((r) => r.text))
  }
  t.same(await Promise.all(texts), expected.map((e) => e.text), 'each text equals generateText alone')
  const mixed = m.rows.filter((r, i) => r >= 2 && m.padded[i]).length
  t.ok(mixed > 0, `${mixed} calls batched rows whose caches had different lengths`)
  const tokens = expected.reduce((a, e) => a + e.tokenIds.length, 0)
  t.ok(m.rows.length < tokens * 0.75, `${m.rows.length} forward calls for ${tokens} tokens (${expected.map((e) => e.tokenIds.length).join(', ')})`)
})

t.test('Transformer-shaped KV caches without attention_mask: only equal past lengths share a call', async (t) => {
  const kv = fakeKvModel(fakeTokenizer().vocabSize, { delayMs: 3 })
  const m: ServedModel = { name: 'kv', tokenizer: fakeTokenizer(), model: kv, manifest: kv.manifest }
  const { post } = await listen(t, createApp({ models: [m], logger: silent }))
  const prompts = ['a', 'b', 'abc', 'cab', 'hhhhh', 'a']
  const expected = await Promise.all(prompts.map((p) => generateText(kv, m.tokenizer, p, { maxNewTokens: 12, temperature: 0 })))
  kv.rows.length = 0
  const results = await Promise.all(prompts.map((prompt) => post('/v1/completions', { prompt, max_tokens: 12, temperature: 0 })))
  t.same(results.map((r) => r.status), prompts.map(() => 200), 'no call mixed cache lengths (the fake throws)')
  t.same(results.map((r) => r.json.choices[0].text), expected.map((e) => e.text))
  t.ok(Math.max(...kv.rows) >= 2, 'rows with equal pasts shared calls')
  t.ok(kv.rows.length > 12, 'rows with different pasts ran in calls of their own')
  // A prompt longer than the context is a 400 before anything streams.
  const long = await post('/v1/completions', { prompt: 'a'.repeat(70), stream: true })
  t.equal(long.status, 400)
  t.match(long.json.error.message, /context is 64/)
})

t.test('requests join and leave the batch between steps', async (t) => {
  const slow = fakeServedModel('slow', { delayMs: 10 })
  const app = createApp({ models: [slow], logger: silent })
  const { post, stream } = await listen(t, app)
  const long = await stream({ prompt: 'a', max_tokens: 40, temperature: 0 })
  const first = await long.events.next() // the long one is decoding
  t.equal(first.value.choices[0].text, 'b')
  const callsBefore = slow.model.calls
  const short = await post('/v1/completions', { prompt: 'c', max_tokens: 3, temperature: 0 })
  t.equal(short.json.choices[0].text, 'def')
  const joined = slow.model.rows.slice(callsBefore)
  t.ok(joined.filter((r) => r === 2).length >= 2, `the short request shared steps with the long one (${joined})`)
  t.equal(app.locals.engine.running, 1, 'and left when it was done')
  const rest = await readStream(long.events)
  t.equal('b' + rest.text, 'bcdefgh', 'the long one runs on to EOS unaffected')
  t.equal(app.locals.engine.active, 0)
})

t.test('a full queue answers 429 with Retry-After; /metrics shows queue and batch', async (t) => {
  const slow = fakeServedModel('slow', { delayMs: 20, endless: true })
  const app = createApp({ models: [slow], logger: silent, limits: { maxBatch: 1, maxQueue: 1 } })
  const { base, post, stream } = await listen(t, app)
  const stop = new AbortController()
  const a = await stream({ prompt: 'a', max_tokens: 500, temperature: 2, seed: 1 }, stop.signal)
  const b = await stream({ prompt: 'b', max_tokens: 500, temperature: 2, seed: 2 }, stop.signal)
  await a.events.next()
  await until('one runs and one waits', () => app.locals.engine.running === 1 && app.locals.engine.waiting === 1)
  for (const streaming of [false, true]) {
    const r = await post('/v1/completions', { prompt: 'c', max_tokens: 2, stream: streaming })
    t.equal(r.status, 429, `stream ${streaming}: 429`)
    t.equal(r.headers.get('retry-after'), '1')
    t.equal(r.json.error.type, 'rate_limit_error')
    t.equal(r.json.error.code, 'queue_full')
  }
  const metrics = await (await fetch(base + '/metrics')).text()
  t.match(metrics, /^lmp_queue_depth 1$/m)
  t.match(metrics, /^lmp_active_batch 1$/m)
  t.match(metrics, /lmp_requests_total\{route="\/completions",status="429"\} 2/)
  stop.abort()
  void b
  await until('everything is gone', () => app.locals.engine.active === 0)
  t.equal((await post('/v1/completions', { prompt: 'c', max_tokens: 2, temperature: 0 })).json.choices[0].text, 'de', 'room again')
  // n choices need n slots at once.
  t.equal((await post('/v1/completions', { prompt: 'c', max_tokens: 2, n: 3 })).status, 429)
})

t.test('a client that drops frees its batch slot within one step; the other stream goes on', async (t) => {
  const slow = fakeServedModel('slow', { delayMs: 15, endless: true })
  const app = createApp({ models: [slow], logger: silent })
  const { base, stream } = await listen(t, app)
  const leaving = new AbortController()
  const gone = await stream({ prompt: 'a', max_tokens: 1000, temperature: 2, seed: 5 }, leaving.signal)
  const staying = await stream({ prompt: 'a', max_tokens: 30, temperature: 2, seed: 6 })
  await gone.events.next()
  await staying.events.next()
  await until('both decode in one batch', () => app.locals.engine.running === 2 && slow.model.rows.at(-1) === 2)
  leaving.abort()
  const callsAtAbort = slow.model.calls
  await until('the slot is free', () => app.locals.engine.running === 1)
  t.ok(slow.model.calls - callsAtAbort <= 1, `freed within one step (${slow.model.calls - callsAtAbort} calls after the drop)`)
  t.match(await (await fetch(base + '/metrics')).text(), /^lmp_active_batch 1$/m)
  const rest = await readStream(staying.events)
  t.ok(rest.done, 'the other stream ends with [DONE]')
  t.equal(rest.chunks, 30, 'with all its tokens (29 more and the finish chunk)')
  t.equal(rest.finish, 'length')
  t.equal(app.locals.engine.active, 0)
  t.equal(slow.model.rows.at(-1), 1, 'its last steps ran alone')
})

t.test('per-request timeout: the generation is cut off with finish_reason length', async (t) => {
  const slow = fakeServedModel('slow', { delayMs: 10, endless: true })
  const app = createApp({ models: [slow], logger: silent, limits: { requestTimeoutMs: 150 } })
  const { post, stream } = await listen(t, app)
  const started = Date.now()
  const r = await post('/v1/completions', { prompt: 'a', max_tokens: 1000, temperature: 2, seed: 3 })
  t.equal(r.status, 200)
  t.equal(r.json.choices[0].finish_reason, 'length')
  t.ok(r.json.usage.completion_tokens > 0 && r.json.usage.completion_tokens < 100, `${r.json.usage.completion_tokens} tokens before the timeout`)
  t.ok(Date.now() - started < 1500, 'it stopped at the timeout')
  const s = await readStream((await stream({ prompt: 'a', max_tokens: 1000, temperature: 2, seed: 3 })).events)
  t.ok(s.done)
  t.equal(s.finish, 'length')
  t.ok(s.chunks < 100)
  await until('the engine is idle', () => app.locals.engine.active === 0)
})

t.test('streamed token chunks have exactly the OpenAI completion chunk shape', async (t) => {
  const { stream } = await listen(t, createApp({ models: [fakeServedModel('fake')], logger: silent }))
  const events: any[] = []
  for await (const ev of (await stream({ prompt: ['a', 'c'], max_tokens: 2, temperature: 0 })).events) events.push(ev)
  t.equal(events.at(-1), 'DONE')
  const tokens = events.filter((e) => e !== 'DONE' && e.choices[0].finish_reason === null)
  t.equal(tokens.length, 4)
  for (const e of tokens) {
    t.same(Object.keys(e), ['id', 'object', 'created', 'model', 'choices'])
    t.match(e, { id: events[0].id, object: 'text_completion', created: events[0].created, model: 'fake' })
    t.same(Object.keys(e.choices[0]), ['text', 'index', 'logprobs', 'finish_reason'])
  }
  t.same(tokens.filter((e) => e.choices[0].index === 1).map((e) => e.choices[0].text), ['d', 'e'])
})

t.test('/metrics: requests, tokens, latency and batch histograms', async (t) => {
  const app = createApp({ models: [fakeServedModel('fake')], logger: silent })
  const { base, post, stream } = await listen(t, app)
  await post('/v1/completions', { prompt: 'a', max_tokens: 3, temperature: 0 })
  await readStream((await stream({ prompt: 'ab', max_tokens: 2, temperature: 0 })).events)
  const res = await fetch(base + '/metrics')
  t.match(res.headers.get('content-type'), /^text\/plain/)
  const text = await res.text()
  t.match(text, /^lmp_prompt_tokens_total\{model="fake"\} 5$/m, 'prompt tokens: [BOS a] + [BOS a b]')
  t.match(text, /^lmp_generated_tokens_total\{model="fake"\} 5$/m)
  t.match(text, /^lmp_requests_total\{route="\/completions",status="200"\} 2$/m)
  t.match(text, /^lmp_request_duration_seconds_count\{route="\/completions"\} 2$/m)
  t.match(text, /^lmp_time_to_first_token_seconds_count\{model="fake"\} 2$/m)
  t.match(text, /^lmp_forward_seconds_count\{model="fake"\} 5$/m, 'one call per token')
  t.match(text, /^lmp_batch_rows_bucket\{model="fake",le="1"\} 5$/m)
  t.match(text, /^lmp_queue_depth 0$/m)
  t.match(text, /^lmp_active_batch 0$/m)
  for (const line of text.trim().split('\n')) {
    if (!line.startsWith('#')) t.match(line, /^[a-z_]+(\{[^}]*\})? [-+\d.e]+|\+Inf$/, `exposition line: ${line}`)
  }
})

t.test('structured logs: one JSON line per request, with the completion fields', async (t) => {
  const lines: any[] = []
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(...String(chunk).trim().split('\n').map((l) => JSON.parse(l))); done() } })
  const app = createApp({ models: [fakeServedModel('fake'), fakeServedModel('slow', { delayMs: 10, endless: true })], logger: pino({ level: 'info' }, sink) })
  const { post, stream } = await listen(t, app)
  await post('/v1/completions', { model: 'fake', prompt: 'a', max_tokens: 3, temperature: 0 })
  await until('a log line', () => lines.some((l) => l.msg === 'request'))
  const line = lines.find((l) => l.msg === 'request')
  t.match(line, { level: 30, method: 'POST', url: '/v1/completions', status: 200, model: 'fake', prompt_tokens: 2, completion_tokens: 3 })
  t.type(line.ms, 'number')
  t.type(line.time, 'number')
  await post('/v1/completions', { prompt: 5 })
  await until('the 400 line', () => lines.some((l) => l.status === 400))

  const leaving = new AbortController()
  const s = await stream({ model: 'slow', prompt: 'a', max_tokens: 500, temperature: 2, seed: 1 }, leaving.signal)
  await s.events.next()
  leaving.abort()
  await until('the disconnect line', () => lines.some((l) => l.msg === 'client went away'))
  t.match(lines.find((l) => l.msg === 'client went away'), { disconnected: true, model: 'slow' })
})

t.test('GET /models/NAME/metrics.jsonl serves the training log', async (t) => {
  const exp = t.testdir({ 'metrics.jsonl': '{"step":1,"loss":4.2}\n{"step":2,"loss":3.9,"val_ppl":40.1}\n' })
  const withLog = { ...fakeServedModel('trained'), files: { manifest: 'x', model: 'x', tokenizer: 'x', metrics: path.join(exp, 'metrics.jsonl') } }
  const noLog = { ...fakeServedModel('fresh'), files: { manifest: 'x', model: 'x', tokenizer: 'x', metrics: path.join(exp, 'none.jsonl') } }
  const { base } = await listen(t, createApp({ models: [withLog, noLog, fakeServedModel('bare')], logger: silent }))
  const res = await fetch(base + '/models/trained/metrics.jsonl')
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/x-ndjson/)
  t.equal(res.headers.get('cache-control'), 'no-cache', 'training may still be writing it')
  t.equal(await res.text(), '{"step":1,"loss":4.2}\n{"step":2,"loss":3.9,"val_ppl":40.1}\n')
  writeFileSync(path.join(exp, 'metrics.jsonl'), '{"step":3}\n', { flag: 'a' })
  t.match(await (await fetch(base + '/models/trained/metrics.jsonl')).text(), /"step":3/, 'read fresh every time')
  for (const name of ['fresh', 'bare', 'nope', '..', '..%2Ftrained']) {
    const r = await fetch(base + `/models/${name}/metrics.jsonl`)
    t.equal(r.status, 404, `${name}: 404`)
    t.type((await r.json()).error.message, 'string', `${name}: a JSON error`)
  }
})

t.test('a real experiment serves its metrics.jsonl', async (t) => {
  writeFileSync(path.join(dir, 'metrics.jsonl'), '{"step":10,"loss":2.5}\n')
  const m = await loadExperimentModel(dir)
  const { base } = await listen(t, createApp({ models: [m], logger: silent }))
  t.equal(await (await fetch(base + '/models/tiny/metrics.jsonl')).text(), '{"step":10,"loss":2.5}\n')
})

t.test('streamed tokens that come faster than --stream-flush-ms share socket writes; the first goes out at once', async (t) => {
  const real = await loadExperimentModel(dir)
  // 4 ms a step, so that 30 tokens take ~120 ms: several flush intervals of 50 ms, many tokens each.
  const slow: ServedModel = { ...real, model: { ...real.model, forward: async (ids, state) => {
    await new Promise((resolve) => setTimeout(resolve, 4))
    return real.model.forward(ids, state)
  } } }
  const body = JSON.stringify({ prompt: 'If you add 3 to 4', max_tokens: 30, temperature: 0, stream: true })
  /** The raw body's reads (each a socket write of the server's, at these gaps) and when the first event came. */
  const reads = async (streamFlushMs: number) => {
    const { base } = await listen(t, createApp({ models: [slow], logger: silent, limits: { streamFlushMs } }))
    const started = performance.now()
    const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    const chunks: string[] = []
    let firstMs = NaN
    const decoder = new TextDecoder()
    for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
      chunks.push(decoder.decode(bytes, { stream: true }))
      if (Number.isNaN(firstMs) && chunks.join('').includes('data: ')) firstMs = performance.now() - started
    }
    return { chunks, firstMs, text: chunks.join('') }
  }
  const each = await reads(0)
  const gathered = await reads(50)
  const events = (text: string) => text.split('\n\n').filter(Boolean)
  t.same(events(gathered.text).map((e) => e.replace(/"id":"[^"]+","object":"text_completion","created":\d+/, '')),
    events(each.text).map((e) => e.replace(/"id":"[^"]+","object":"text_completion","created":\d+/, '')), 'the same events, in the same order')
  t.ok(events(each.text).length >= 30, `${events(each.text).length} events`)
  t.ok(each.chunks.length >= 20, `every token written on its own: ${each.chunks.length} reads`)
  t.ok(gathered.chunks.length <= 8, `gathered: ${gathered.chunks.length} reads for ${events(gathered.text).length} events`)
  t.ok(gathered.firstMs < 50 + 40, `the first token did not wait for an interval (${gathered.firstMs.toFixed(0)} ms)`)
})
