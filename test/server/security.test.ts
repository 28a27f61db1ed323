// server/security.ts: what --api-key guards (issue 14 item 11), JSON content type on POST and loopback
// Host names on a loopback bind (item 12), and an empty key refused (item 9, in-process; the CLI in
// serve.test.ts).
import t, { type Test } from 'tap'
import http from 'node:http'
import { pino } from 'pino'
import { createApp, type AppOptions } from '../../server/app.ts'
import { ModelRegistry } from '../../server/models.ts'
import { isLoopback } from '../../server/security.ts'
import { LmpError } from '../../src/errors.ts'
import { fakeServedModel } from './fake-model.ts'
import { listen } from './http.ts'

const silent = pino({ level: 'silent' })

/** A served fake model with files, so that /models/NAME/... has something to send. */
function withFiles(dir: string) {
  const m = fakeServedModel('fake')
  return { ...m, files: { model: `${dir}/model.onnx`, manifest: `${dir}/manifest.json`, tokenizer: `${dir}/tokenizer.json`, metrics: `${dir}/metrics.jsonl` } }
}

async function serve(t: Test, opts: Partial<AppOptions> = {}) {
  const dir = t.testdir({
    web: { 'index.html': '<!doctype html><title>page</title>', 'main.js': '// page' },
    exp: { 'model.onnx': 'onnx bytes', 'manifest.json': '{}', 'tokenizer.json': '{}', 'metrics.jsonl': '{"step":1}\n' },
  })
  const app = createApp({ models: [withFiles(`${dir}/exp`)], logger: silent, webDir: `${dir}/web`, ...opts })
  return listen(t, app)
}

/** A raw GET with any Host header (fetch would not let a test set it). */
function get(base: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(base + path, { headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    }).on('error', reject)
  })
}

t.test('isLoopback', async (t) => {
  for (const h of ['localhost', 'LOCALHOST', 'app.localhost', 'localhost.', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) t.ok(isLoopback(h), h)
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.5', 'evil.example', 'localhost.evil.example', '127.0.0.1.evil.example', '']) t.notOk(isLoopback(h), h)
})

t.test('with --api-key: the page and /health are public, everything else needs the key', async (t) => {
  const { base } = await serve(t, { apiKey: 'sekrit' })
  const key = { authorization: 'Bearer sekrit' }
  const open = ['/', '/index.html', '/main.js', '/health']
  const guarded = ['/models/index.json', '/models/fake/model.onnx', '/models/fake/manifest.json', '/models/fake/tokenizer.json',
    '/models/fake/metrics.jsonl', '/models/nope/model.onnx', '/metrics', '/v1/models', '/v1/nope']
  for (const path of open) t.equal((await fetch(base + path)).status, 200, `${path} is public`)
  for (const path of guarded) {
    const r = await fetch(base + path)
    t.equal(r.status, 401, `${path} needs the key`)
    t.equal((await r.json()).error.code, 'invalid_api_key')
    t.equal((await fetch(base + path, { headers: { authorization: 'Bearer wrong' } })).status, 401, `${path}: a wrong key`)
  }
  t.equal(await (await fetch(base + '/models/fake/model.onnx', { headers: key })).text(), 'onnx bytes', 'with the key the files are served')
  t.equal(await (await fetch(base + '/models/fake/metrics.jsonl', { headers: key })).text(), '{"step":1}\n')
  t.equal((await fetch(base + '/models/index.json', { headers: key })).status, 200)
  t.equal((await fetch(base + '/metrics', { headers: key })).status, 200)
  const post = await fetch(base + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"a","max_tokens":1}' })
  t.equal(post.status, 401)
  const preflight = await fetch(base + '/v1/completions', { method: 'OPTIONS', headers: { origin: 'http://example.com', 'access-control-request-method': 'POST' } })
  t.not(preflight.status, 401, 'a CORS preflight (which never carries the key) is not refused for lacking it')
})

t.test('without a key the model files stay open (a loopback server)', async (t) => {
  const { base } = await serve(t)
  t.equal((await fetch(base + '/models/fake/model.onnx')).status, 200)
  t.equal((await fetch(base + '/metrics')).status, 200)
})

t.test('an empty key is refused, not taken as "no auth"', async (t) => {
  t.throws(() => createApp({ models: [fakeServedModel()], logger: silent, apiKey: '' }), { constructor: LmpError, message: /API key is empty/ })
})

t.test('POST needs a JSON content type: 415 otherwise, before anything runs', async (t) => {
  const { base, post } = await serve(t)
  const body = '{"prompt":"a","max_tokens":3}'
  for (const type of [undefined, 'text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
    const headers: Record<string, string> = type ? { 'content-type': type } : {}
    // Without a type, fetch sends a string body as text/plain;charset=UTF-8; a Blob without a type has none.
    const r = await fetch(base + '/v1/completions', { method: 'POST', headers, body: type ? body : new Blob([body]) })
    t.equal(r.status, 415, `${type ?? 'no content type'}: 415`)
    const json = await r.json()
    t.equal(json.error.code, 'unsupported_media_type')
    t.match(json.error.message, /Content-Type: application\/json/)
  }
  // A foreign page's form post (an Origin, text/plain): refused, and no generation ran.
  const r = await fetch(base + '/v1/perplexity', { method: 'POST', headers: { 'content-type': 'text/plain', origin: 'http://evil.example' }, body: '{"text":"abc"}' })
  t.equal(r.status, 415)
  for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/merge-patch+json']) {
    t.equal((await post('/v1/completions', body, { 'content-type': type })).status, 200, `${type}: accepted`)
  }
})

t.test('a loopback server answers only loopback Host names (DNS rebinding)', async (t) => {
  const { base } = await serve(t)
  const port = new URL(base).port
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`, `app.localhost:${port}`]) {
    t.equal((await get(base, '/health', { host })).status, 200, `${host}: served`)
  }
  for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `192.168.1.5:${port}`, `localhost.evil.example`]) {
    for (const path of ['/health', '/v1/models', '/models/fake/model.onnx', '/']) {
      const r = await get(base, path, { host })
      t.equal(r.status, 403, `${host} ${path}: 403`)
      t.equal(JSON.parse(r.body).error.code, 'host_not_allowed')
    }
  }
})

t.test('a server bound to all interfaces serves any Host name', async (t) => {
  const { base } = await serve(t, { host: '0.0.0.0' })
  t.equal((await get(base, '/health', { host: 'my-server.example:8080' })).status, 200)
})

t.test('health while the registry loads is still 503 behind the guards', async (t) => {
  const app = createApp({ models: new ModelRegistry([], false), logger: silent })
  const { base } = await listen(t, app)
  t.equal((await fetch(base + '/health')).status, 503)
})
