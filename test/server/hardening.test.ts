// Issue 14, items 7, 8, 13, 14: a server bounded and fair against its clients. Back-pressure on large
// JSON answers and on streams (the server stops writing while the client does not read), idle and slow
// sockets closed (server/connections.ts), scoring that does not stall decoding (the engine's scoring
// lane), a shutdown that answers requests on idle keep-alive sockets instead of resetting them, and n >= 11
// choices without a MaxListenersExceededWarning.
import t, { type Test } from 'tap'
import http from 'node:http'
import net, { type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { createApp, type App, type AppOptions } from '../../server/app.ts'
import { createHttpServer, type ConnectionLimits, type HttpServer } from '../../server/connections.ts'
import { scoreText } from '../../src/infer/perplexity.ts'
import { fakeServedModel } from './fake-model.ts'
import { sseEvents, until } from './http.ts'

const silent = pino({ level: 'silent' })

/** The app behind createHttpServer (as startServer runs it) on 127.0.0.1:0; the server's sockets. */
async function serve(t: Test, opts: Partial<AppOptions> = {}, limits: Partial<ConnectionLimits> = {}) {
  const app: App = createApp({
    models: [fakeServedModel('fake'), fakeServedModel('endless', { endless: true }), fakeServedModel('slow', { delayMs: 20, endless: true })],
    logger: silent,
    ...opts,
  })
  const server: HttpServer = createHttpServer(app, limits)
  const sockets: Socket[] = []
  server.on('connection', (s: Socket) => sockets.push(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const port = (server.address() as AddressInfo).port
  return { app, server, sockets, port, base: `http://127.0.0.1:${port}` }
}

/** A POST whose response the caller reads when it wants (or never): resolves with the response object. */
function open(port: number, path: string, body: object, agent?: http.Agent): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: agent ?? false, headers: { 'content-type': 'application/json' } }, resolve)
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    res.setEncoding('utf8')
    res.on('data', (d) => (text += d))
    res.on('end', () => resolve(text))
    res.on('error', reject)
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits until the server socket's queued bytes stop changing; returns them. */
async function settledQueue(socket: Socket): Promise<number> {
  let last = -1
  for (let i = 0; i < 50; i++) {
    await sleep(40)
    const now = socket.writableLength + socket.bytesWritten
    if (now === last) break
    last = now
  }
  return socket.writableLength
}

const MiB = 1 << 20

t.test('a large JSON answer waits for the client to read it (back-pressure), and arrives whole', async (t) => {
  const { app, sockets, port } = await serve(t, { limits: { maxPromptTokens: 40_000 } })
  // 20,000 tokens with every alternative: ~13 MB of JSON, far more than the kernel's socket buffers.
  const text = 'abcdefgh'.repeat(2_500)
  const res = await open(port, '/v1/perplexity', { model: 'fake', text, per_token: true, top_logprobs: 20 })
  t.equal(res.statusCode, 200)
  await until('scoring ends', () => app.locals.engine.active === 0, 20_000)
  const queued = await settledQueue(sockets[0])
  t.ok(queued < MiB, `bytes queued in the server while the client reads nothing: ${queued} (< 1 MiB)`)
  const body = JSON.parse(await readAll(res))
  t.ok(sockets[0].bytesWritten > 8 * MiB, `the answer was ${(sockets[0].bytesWritten / MiB).toFixed(1)} MiB`)
  t.equal(body.tokens, 20_001)
  t.equal(body.per_token.length, 20_001)
  t.equal(body.per_token[0].top_logprobs.length, 12, 'every alternative of the 12-token vocabulary')
  const m = app.locals.registry.get('fake')!
  const expected = await scoreText(m.model, m.tokenizer, text, { perToken: true, alternatives: 20 })
  t.same(body.per_token.slice(-3).map((p: any) => p.token_id), expected.perToken!.slice(-3).map((p) => p.tokenId))
  t.ok(Math.abs(body.total_nll - expected.nll) < 1e-6 * expected.nll, 'the same score as one scoreText call')
})

t.test('large answers held for clients that do not read are bounded by answerBufferBytes (503 beyond)', async (t) => {
  const { app, port } = await serve(t, { limits: { maxPromptTokens: 40_000 }, answerBufferBytes: 20 * MiB })
  const body = { model: 'fake', text: 'abcdefgh'.repeat(2_500), per_token: true, top_logprobs: 20 }
  const held = await open(port, '/v1/perplexity', body)
  t.equal(held.statusCode, 200, 'the first ~15 MB answer fits')
  const refused = await open(port, '/v1/perplexity', body)
  t.equal(refused.statusCode, 503, 'a second one does not, while the first client reads nothing')
  t.equal(refused.headers['retry-after'], '1')
  t.equal(JSON.parse(await readAll(refused)).error.code, 'answer_buffer_full')
  t.equal(JSON.parse(await readAll(held)).tokens, 20_001, 'the first arrives whole once read')
  await until('the engine is idle', () => app.locals.engine.active === 0)
  const again = await open(port, '/v1/perplexity', body)
  t.equal(again.statusCode, 200, 'its bytes were given back')
  again.resume()
})

t.test('a stream waits for the client to read it (back-pressure): its generation pauses, every token arrives', async (t) => {
  const { app, sockets, port } = await serve(t)
  const endless = app.locals.registry.get('endless')!.model as unknown as { calls: number }
  // 16 choices × 2,048 tokens with 5 logprobs each: ~8 MB of events.
  const res = await open(port, '/v1/completions', { model: 'endless', prompt: 'a', n: 16, max_tokens: 2048, logprobs: 5, temperature: 0, stream: true })
  t.equal(res.statusCode, 200)
  const queued = await settledQueue(sockets[0])
  const calls = endless.calls
  await sleep(100)
  t.equal(endless.calls, calls, `the generation waits for the client (${calls} steps of 2,048)`)
  t.ok(calls < 2048)
  t.equal(app.locals.engine.active, 16, 'still in flight')
  t.ok(queued < MiB, `bytes queued in the server while the client reads nothing: ${queued} (< 1 MiB)`)
  const text = await readAll(res)
  const tokens = text.split('\n\n').filter((e) => e.includes('"finish_reason":null')).length
  t.equal(tokens, 16 * 2048, 'every token')
  t.ok(text.endsWith('data: [DONE]\n\n'))
})

t.test('a client that stops reading is disconnected after idleTimeoutMs, and its work stops', async (t) => {
  const { app, server, port } = await serve(t, {}, { idleTimeoutMs: 300 })
  const endless = app.locals.registry.get('endless')!.model as unknown as { calls: number }
  const res = await open(port, '/v1/completions', { model: 'endless', prompt: 'a', n: 16, max_tokens: 2048, logprobs: 5, temperature: 0, stream: true })
  const started = Date.now()
  // The client sees the end only once it reads what came before it; the server is done at once.
  await until('the server closes the stalled stream', () => server.inFlight === 0 && app.locals.engine.active === 0, 30_000)
  t.pass(`closed after ${Date.now() - started} ms`)
  const calls = endless.calls
  await sleep(100)
  t.equal(endless.calls, calls, 'no more model calls')
  t.ok(calls < 2048, `the generation was cancelled before its end (${calls} calls)`)
  const text = await readAll(res).catch(() => 'aborted')
  t.notMatch(text, /data: \[DONE\]\n\n$/, 'the stream was cut')
})

t.test('a request body that stops, or trickles, is cut off', async (t) => {
  const { server, port } = await serve(t, {}, { idleTimeoutMs: 300, requestTimeoutMs: 600 })
  const raw = (): Promise<{ socket: net.Socket; closed: Promise<string> }> => new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      let got = ''
      socket.setEncoding('utf8')
      socket.on('data', (d) => (got += d))
      socket.on('error', () => {})
      const closed = new Promise<string>((r) => socket.on('close', () => r(got)))
      socket.write('POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":')
      resolve({ socket, closed })
    })
  })
  const stalled = await raw()
  const started = Date.now()
  await stalled.closed
  t.ok(Date.now() - started < 10_000, `a stalled body is closed (${Date.now() - started} ms)`)

  const trickled = await raw()
  const timer = setInterval(() => trickled.socket.write(' '), 100)
  const begun = Date.now()
  const answer = await trickled.closed
  clearInterval(timer)
  t.ok(Date.now() - begun < 10_000, `a trickled body is closed (${Date.now() - begun} ms)`)
  t.match(answer, /^(HTTP\/1\.1 408|)/, 'with a 408, or nothing')
  t.equal(server.inFlight, 0)
})

t.test('queued scoring jobs do not hold back a stream: its first token comes before they finish', async (t) => {
  // A model call costs 1 ms plus 0.02 ms a token: a job of ~1,500 tokens is ~30 ms of model time, in 12
  // slices of 128 tokens; a decoding step is ~1 ms.
  const served = fakeServedModel('m')
  const forward = served.model.forward.bind(served.model)
  served.model.forward = async (ids, state) => {
    await sleep(1 + 0.02 * ids.length * ids[0].length)
    return forward(ids, state)
  }
  const { app, base, port } = await serve(t, { models: [served] })
  const text = 'abcdefgh'.repeat(190)
  let scored = 0
  const jobs = Array.from({ length: 10 }, () => fetch(base + '/v1/perplexity', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }),
  }).then(async (r) => { scored++; return r.json() }))
  await until('scoring runs', () => served.model.calls > 0)
  await sleep(20)
  const res = await open(port, '/v1/completions', { prompt: 'a', max_tokens: 3, temperature: 0, stream: true })
  let scoredAtFirstToken = -1
  for await (const ev of sseEvents(new Response(res as unknown as ReadableStream))) {
    if (ev !== 'DONE' && scoredAtFirstToken < 0) scoredAtFirstToken = scored
  }
  const results = await Promise.all(jobs)
  t.ok(scoredAtFirstToken >= 0 && scoredAtFirstToken < 5, `scoring jobs finished before the first token: ${scoredAtFirstToken} of 10`)
  const m = app.locals.registry.get('m')!
  const expected = await scoreText(m.model, m.tokenizer, text)
  for (const r of results) t.ok(Math.abs(r.total_nll - expected.nll) < 1e-6 * expected.nll, 'the sliced score equals one scoreText call')
})

t.test('a scoring job is cancelled when its client goes away', async (t) => {
  const { app, base } = await serve(t, { models: [fakeServedModel('m', { delayMs: 5 })] })
  const model = app.locals.registry.get('m')!.model as unknown as { calls: number }
  const controller = new AbortController()
  const r = fetch(base + '/v1/perplexity', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'abcdefgh'.repeat(500) }), signal: controller.signal,
  }).catch(() => 'aborted')
  await until('scoring runs', () => model.calls > 2)
  controller.abort()
  t.equal(await r, 'aborted')
  await until('the job ended', () => app.locals.engine.active === 0)
  t.ok(model.calls < 20, `it stopped after ${model.calls} of its 32 slices`)
})

t.test('n >= 11 choices: no MaxListenersExceededWarning', async (t) => {
  const { base } = await serve(t)
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  for (const stream of [false, true]) {
    const r = await fetch(base + '/v1/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake', prompt: 'a', n: 16, max_tokens: 3, temperature: 0, stream }),
    })
    t.equal(r.status, 200)
    const text = await r.text()
    if (!stream) t.equal(JSON.parse(text).choices.length, 16)
  }
  await sleep(20)
  t.same(warnings.map((w) => `${w.name}: ${w.message}`), [], 'no process warnings')
})

t.test('shutdown: a request on an idle keep-alive socket is answered (Connection: close), none is reset', async (t) => {
  const { app, server, port } = await serve(t)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => agent.destroy())
  // In flight at shutdown: a stream of 15 tokens at 20 ms each.
  const inFlight = await open(port, '/v1/completions', { model: 'slow', prompt: 'a', max_tokens: 15, temperature: 0, stream: true }, agent)
  const inFlightText = readAll(inFlight)
  await until('the stream runs', () => app.locals.engine.running === 1)
  // Idle keep-alive sockets: requests done, sockets kept by the agent.
  const first = await Promise.all([1, 2, 3].map(() => open(port, '/v1/tokenize', { text: 'ab' }, agent).then(readAll)))
  t.equal(first.length, 3)
  t.equal(Object.values(agent.freeSockets).flat().length, 3, 'three idle keep-alive sockets')

  const closing = server.shutdown()
  // Sent at once on the idle sockets, as a busy client would.
  const during = await Promise.allSettled([1, 2, 3].map(() => open(port, '/v1/completions', { prompt: 'a', max_tokens: 2, temperature: 0 }, agent)
    .then(async (res) => ({ status: res.statusCode, connection: res.headers.connection, body: JSON.parse(await readAll(res)) }))))
  for (const d of during) {
    t.equal(d.status, 'fulfilled', `answered, not reset: ${d.status === 'rejected' ? String(d.reason) : ''}`)
    if (d.status === 'fulfilled') {
      t.equal(d.value.status, 200)
      t.equal(d.value.connection, 'close', 'Connection: close during shutdown')
      t.equal(d.value.body.choices[0].text, 'bc')
    }
  }
  const health = await new Promise<number | string>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/health', agent: false }, (r) => resolve(r.statusCode!)).on('error', (e: NodeJS.ErrnoException) => resolve(e.code!))
  })
  t.equal(health, 'ECONNREFUSED', 'a new connection is refused (the client knows nothing ran), not reset')
  const text = await inFlightText
  t.match(text, /data: \[DONE\]\n\n$/, 'the in-flight stream finished')
  await closing
  t.equal(server.inFlight, 0)
  t.pass('every connection closed')
})
