// startServer and `lmp serve` with a real exported model (onnxruntime-node): the served text equals
// generateText's, the page's files are served, bad experiments fail in one line, SIGTERM is graceful.
import t from 'tap'
import { spawn } from 'node:child_process'
import http from 'node:http'
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { startServer } from '../../server/index.ts'
import { loadExperimentModel } from '../../server/models.ts'
import { LmpError } from '../../src/errors.ts'
import { generateText } from '../../src/infer/generate.ts'
import { writeExportedModel } from './exported-model.ts'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const silent = pino({ level: 'silent' })
const root = t.testdir({})
// Seed 3: its greedy text never reaches EOS (the SIGTERM test needs a long generation).
const { dir, manifest } = await writeExportedModel(root, 'tiny', 3)

t.test('startServer serves a real model on port 0', async (t) => {
  const server = await startServer({ exps: [dir], port: 0, logger: silent })
  t.teardown(() => server.close())
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  t.not(server.url, 'http://127.0.0.1:0/')

  const reference = await loadExperimentModel(dir)
  const prompt = 'If you add 3 to 4 you get'
  const expected = await generateText(reference.model, reference.tokenizer, prompt, { maxNewTokens: 20, temperature: 0 })
  const res = await fetch(server.url + 'v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', prompt, max_tokens: 20, temperature: 0 }),
  })
  const body = await res.json()
  t.equal(res.status, 200)
  t.equal(body.choices[0].text, expected.text, 'the HTTP text is generateText\'s')

  const m = await (await fetch(server.url + 'v1/models')).json()
  t.equal(m.data[0].architecture, 'LSTM-2000')

  const served = await fetch(server.url + 'models/tiny/manifest.json')
  t.equal(served.status, 200)
  t.equal((await served.json()).sha256, manifest.sha256)
  const onnx = await fetch(server.url + 'models/tiny/model.onnx')
  t.same(new Uint8Array(await onnx.arrayBuffer()), new Uint8Array(readFileSync(path.join(dir, 'onnx', 'model.onnx'))))
  t.equal((await fetch(server.url + 'models/tiny/config.json')).status, 404, 'only the exported files the manifest names')
  t.equal((await fetch(server.url + 'models/tiny/..%2F..%2Ftokenizer.json')).status, 404)
  t.same(await (await fetch(server.url + 'models/index.json')).json(), { models: [{ name: 'tiny', architecture: 'LSTM-2000', path: 'models/tiny/' }] })

  const wasm = await fetch(server.url + 'ort/ort-wasm-simd-threaded.asyncify.wasm')
  t.equal(wasm.status, 200, 'onnxruntime-web runtime served by the project')
  t.equal(wasm.headers.get('content-type'), 'application/wasm')
  await wasm.arrayBuffer()
  t.equal((await fetch(server.url + 'ort/ort.node.min.js')).status, 404, 'only the .mjs/.wasm runtime files')
  t.equal((await fetch(server.url + 'ort/..%2Fpackage.json')).status, 404)
})

t.test('a bad experiment fails with one line', async (t) => {
  await t.rejects(startServer({ exps: ['no-such-exp'], expRoot: root, port: 0, logger: silent }), { constructor: LmpError, message: /unknown experiment 'no-such-exp'/ })
  const corrupt = (await writeExportedModel(root, 'corrupt', 6)).dir
  const onnxPath = path.join(corrupt, 'onnx', 'model.onnx')
  const bytes = readFileSync(onnxPath)
  bytes[bytes.length >> 1] ^= 0xff
  writeFileSync(onnxPath, bytes)
  await t.rejects(startServer({ exps: [corrupt], port: 0, logger: silent }), { message: /corrupt ONNX model: .* does not match the sha256/ })
  const noExport = path.join(root, 'plain')
  await t.rejects(startServer({ exps: [noExport], port: 0, logger: silent }), { message: /unknown experiment 'plain'/ })
})

t.test('a broken chat template stops the start-up in one line (it was a 500 on every chat request)', async (t) => {
  const copy = path.join(root, 'templated')
  cpSync(dir, copy, { recursive: true })
  writeFileSync(path.join(copy, 'onnx', 'tokenizer_config.json'), JSON.stringify({ chat_template: '{% for m in messages %}' }))
  await t.rejects(startServer({ exps: [copy], port: 0, logger: silent }), { message: /^the chat template in .*tokenizer_config\.json cannot be used: [^\n]*$/ })
})

t.test('lmp serve prints the URL, and SIGTERM lets an in-flight request finish', async (t) => {
  const child = spawn(process.execPath, [path.join(repo, 'bin', 'lmp.js'), 'serve', '--exp', dir, '--port', '0'], {
    env: { ...process.env, LMP_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d
      const m = /at (http:\/\/\S+)/.exec(stdout)
      if (m) resolve(m[1])
    })
    child.on('exit', () => reject(new Error(`lmp serve exited: ${stderr}`)))
  })
  t.match(stdout, /^lmp: serving tiny at http:\/\/127\.0\.0\.1:\d+\/\n/)
  // A request that is still running when SIGTERM arrives: SIGTERM goes as soon as its first chunk is here
  // (a fixed sleep raced the tiny model, which generates 2,000 tokens in ~150 ms on an idle machine).
  const response = await fetch(url + 'v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'If you add 12 to 30 you get', max_tokens: 2000, temperature: 0, stream: true }),
  })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const firstChunk = (await reader.read()).value ?? ''
  let finished = false
  const inFlight = (async () => {
    let text = firstChunk
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value
    finished = true
    return text
  })()
  // An idle keep-alive socket at SIGTERM (issue 14 item 13).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const tokenize = () => new Promise<{ status?: number; connection?: string; error?: string }>((resolve) => {
    const req = http.request(url + 'v1/tokenize', { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }))
    })
    req.on('error', (e) => resolve({ error: String(e) }))
    req.end('{"text":"ab"}')
  })
  t.equal((await tokenize()).status, 200)
  t.notOk(finished, 'the request is still running at SIGTERM')
  const sawSigterm = new Promise<void>((resolve) => child.stderr.on('data', () => { if (/SIGTERM/.test(stderr)) resolve() }))
  child.kill('SIGTERM')
  await sawSigterm
  // The server is shutting down: a request on the idle socket is answered, not reset.
  t.same(await tokenize(), { status: 200, connection: 'close' }, 'answered with Connection: close')
  const text = await inFlight
  t.match(text, /"finish_reason":"length"[^\n]*\n\ndata: \[DONE\]\n\n$/, 'the in-flight stream ran to max_tokens and finished')
  t.equal(text.split('\n\n').length - 1, 2000 + 2, 'every token arrived')
  t.equal(await exited, 0, 'exit code 0')
  t.match(stderr, /SIGTERM: finishing requests in flight/)
  await t.rejects(fetch(url + 'health'), 'no longer listening')
})

t.test('lmp serve: a bad flag or experiment is one line and a non-zero exit', async (t) => {
  const run = (args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin', 'lmp.js'), 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    child.on('exit', (code) => resolve({ code, stderr }))
  })
  const flag = await run(['--exp', dir, '--prot', '1'])
  t.equal(flag.code, 2)
  t.equal(flag.stderr.trim().split('\n').length, 1)
  const missing = await run(['--exp', path.join(root, 'missing'), '--port', '0'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /^lmp: error: unknown experiment 'missing'/)
  t.equal(missing.stderr.trim().split('\n').length, 1)
})

t.test('an empty API key refuses to start, from the flag, the environment or the API (issue 14 item 9)', async (t) => {
  const run = (args: string[], env: Record<string, string> = {}) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin', 'lmp.js'), 'serve', '--exp', dir, '--port', '0', ...args], {
      env: { ...process.env, LMP_LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
  const flag = await run(['--api-key', ''])
  t.equal(flag.code, 2, '--api-key "": usage error')
  t.match(flag.stderr, /^lmp: error: --api-key is empty: give a key, or leave it unset/)
  t.equal(flag.stderr.trim().split('\n').length, 1, 'one line')
  t.notMatch(flag.stdout, /serving/)
  const env = await run([], { LMP_API_KEY: '' })
  t.equal(env.code, 2, 'LMP_API_KEY="": usage error')
  t.match(env.stderr, /^lmp: error: LMP_API_KEY is empty/)
  await t.rejects(startServer({ exps: [dir], port: 0, logger: silent, apiKey: '' }), { constructor: LmpError, message: /API key is empty/ })
})

t.test('--host 0.0.0.0 without a key warns, and the printed address is the bound one (issue 14 item 10)', async (t) => {
  const child = spawn(process.execPath, [path.join(repo, 'bin', 'lmp.js'), 'serve', '--exp', dir, '--port', '0', '--host', '0.0.0.0'], {
    env: { ...process.env, LMP_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d
      const m = /at (http:\/\/\S+)/.exec(stdout)
      if (m) resolve(m[1])
    })
    child.on('exit', () => reject(new Error(`lmp serve exited: ${stderr}`)))
  })
  t.match(url, /^http:\/\/0\.0\.0\.0:\d+\/$/, 'the address it listens on, not 127.0.0.1')
  t.match(stderr, /^lmp: warning: listening on 0\.0\.0\.0 without an API key: anyone who can reach this machine/m)
  const port = new URL(url).port
  t.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200)
  child.kill('SIGTERM')
  t.equal(await exited, 0)

  const keyed = await startServer({ exps: [dir], port: 0, host: '0.0.0.0', apiKey: 'k', logger: silent })
  t.teardown(() => keyed.close())
  t.equal(keyed.warning, undefined, 'with a key: no warning')
  t.match(keyed.url, /^http:\/\/0\.0\.0\.0:\d+\/$/)
  const local = await startServer({ exps: [dir], port: 0, logger: silent })
  t.teardown(() => local.close())
  t.equal(local.warning, undefined, 'loopback: no warning')
})

const ortBin = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/dist/binding.js'))
const cudaInstalled = existsSync(path.join(ortBin, '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'))

t.test('lmp serve --device cuda without a loadable CUDA provider: one line, non-zero exit, no CPU fallback', { skip: cudaInstalled && 'the CUDA provider is installed here' }, async (t) => {
  const child = spawn(process.execPath, [path.join(repo, 'bin', 'lmp.js'), 'serve', '--exp', dir, '--port', '0', '--device', 'cuda'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  t.equal(code, 1, 'exits non-zero')
  t.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr}`)
  t.match(stderr, /^lmp: error: --device cuda: onnxruntime-node's CUDA execution provider cannot load \(.+\); install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12/)
  t.notMatch(stdout, /serving/, 'it never serves on the CPU instead')
})
