// Hostile and malformed bodies against every POST endpoint: wrong types, huge numbers, deep nesting,
// invalid UTF-8, oversized bodies, unknown and path-like model names. No 5xx, every error is JSON in
// OpenAI's shape, and the server stays healthy.
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import fc from 'fast-check'
import { pino } from 'pino'
import { createApp } from '../../server/app.ts'
import { fakeServedModel } from './fake-model.ts'

const app = createApp({ models: [fakeServedModel('fake')], logger: pino({ level: 'silent' }), limits: { bodyBytes: 64 * 1024, maxTokens: 64 } })
const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
const endpoints = ['/v1/completions', '/v1/perplexity', '/v1/tokenize', '/v1/detokenize']

async function send(path: string, body: string | Uint8Array): Promise<{ status: number; json: any }> {
  const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body as BodyInit })
  const text = await res.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.status, json }
}

function checkResponse(t: Test, what: string, r: { status: number; json: any }) {
  if (r.status >= 500) t.fail(`${what}: ${r.status} ${JSON.stringify(r.json)}`)
  if (r.status >= 400 && typeof r.json?.error?.message !== 'string') t.fail(`${what}: ${r.status} without a JSON error`)
}

const hostileValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, '', 'NaN', '\u0000', '../../etc/passwd', '%2e%2e%2f', '<bos><eos>'),
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.array(fc.oneof(fc.integer({ min: -5, max: 50 }), fc.string({ maxLength: 5 })), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.integer(), { maxKeys: 3 }),
)
const fields = ['model', 'prompt', 'max_tokens', 'temperature', 'top_p', 'top_k', 'n', 'stop', 'seed', 'logprobs', 'echo', 'stream',
  'repetition_penalty', 'text', 'per_token', 'top_logprobs', 'tokens', 'stream_options', '__proto__', 'constructor']
const hostileBody = fc.dictionary(fc.constantFrom(...fields), hostileValue, { maxKeys: 6 })

t.test('400+ random hostile JSON bodies', async (t) => {
  let count = 0
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...endpoints), hostileBody, async (path, body) => {
      // Keep generation short where a body happens to be valid.
      const b = path === '/v1/completions' && typeof body.max_tokens !== 'number' ? { ...body, max_tokens: 2 } : body
      const r = await send(path, JSON.stringify(b))
      count++
      checkResponse(t, `${path} ${JSON.stringify(b).slice(0, 200)}`, r)
      return r.status < 500
    }),
    { numRuns: 460, seed: 20240601 },
  )
  t.equal(count, 460, "460 random bodies; with the 60 hand-made ones below, over 500")
})

t.test('malformed bytes, nesting and sizes', async (t) => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n)
  const deepObject = (n: number) => '{"prompt":'.repeat(n) + '"a"' + '}'.repeat(n)
  const cases: [string, string | Uint8Array][] = [
    ['empty body', ''],
    ['not JSON', 'hello'],
    ['truncated', '{"prompt": "a'],
    ['NaN literal', '{"prompt": "a", "max_tokens": NaN}'],
    ['Infinity literal', '{"prompt": "a", "temperature": Infinity}'],
    ['trailing comma', '{"prompt": "a",}'],
    ['deep array', deep(5000)],
    ['deep object', deepObject(2000)],
    ['very deep array', deep(60_000)],
    ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0x70, 0x72, 0x6f, 0x6d, 0x70, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0x22, 0x7d])],
    ['lone surrogate escape', '{"prompt": "\\ud800", "max_tokens": 2}'],
    ['10 MB body', '{"prompt": "' + 'a'.repeat(10 * 1024 * 1024) + '"}'],
    ['huge number', '{"prompt": "a", "max_tokens": 1' + '0'.repeat(400) + '}'],
    ['null', 'null'],
    ['number', '42'],
  ]
  for (const path of endpoints) {
    for (const [what, body] of cases) checkResponse(t, `${path} ${what}`, await send(path, body))
  }
  for (const name of ['../fake', '..%2Ffake', 'fake/../../x', '/etc/passwd', 'FAKE', 'fake\u0000', 'x'.repeat(300)]) {
    const r = await send('/v1/completions', JSON.stringify({ model: name, prompt: 'a', max_tokens: 1 }))
    t.ok(r.status === 404 || r.status === 400, `model name ${JSON.stringify(name).slice(0, 40)} is rejected (${r.status})`)
  }
  for (const path of ['/models/..%2F..%2Fpackage.json/x', '/models/fake/..%2F..%2Fpackage.json', '/ort/..%2F..%2Fpackage.json', '/..%2Fpackage.json']) {
    const res = await fetch(base + path)
    t.equal(res.status, 404, `GET ${path} is 404`)
    await res.arrayBuffer()
  }
  const health = await fetch(base + '/health')
  t.equal(health.status, 200, 'still healthy')
  const ok = await send('/v1/completions', JSON.stringify({ prompt: 'a', max_tokens: 3, temperature: 0 }))
  t.equal(ok.json.choices[0].text, 'bcd', 'and still generating')
})
