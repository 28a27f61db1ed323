// One served model of every tokenizer kind (character, whitespace, BPE, gpt2): startServer and `lmp serve`
// load them all, the HTTP text equals onnxruntime-node's generateText, and a model that cannot load stops
// the start-up with one line that names its folder (the server never starts with some models missing).
import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { startServer } from '../../server/index.ts'
import { loadExperimentModel } from '../../server/models.ts'
import { LmpError } from '../../src/errors.ts'
import { generateText } from '../../src/infer/generate.ts'
import { TOKENIZER_NAMES } from '../../src/tokenizer/index.ts'
import { writeExportedModel } from './exported-model.ts'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const silent = pino({ level: 'silent' })
const root = t.testdir({})
const dirs: Record<string, string> = {}
for (const kind of TOKENIZER_NAMES) dirs[kind] = (await writeExportedModel(root, `tk-${kind}`, 5, {}, kind)).dir

/** `lmp serve ARGS --port 0` until it prints its URL (then SIGTERM) or exits. */
function serve(args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; url?: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin', 'lmp.js'), 'serve', ...args, '--port', '0'], {
      env: { ...process.env, LMP_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let url: string | undefined
    child.stderr.on('data', (d) => (stderr += d))
    child.stdout.on('data', (d) => {
      stdout += d
      const m = /at (http:\/\/\S+)/.exec(stdout)
      if (m && !url) {
        url = m[1]
        fetch(url + 'v1/models').then((r) => r.json()).then((models) => {
          stdout += JSON.stringify(models)
          child.kill('SIGTERM')
        }, () => child.kill('SIGTERM'))
      }
    })
    child.on('exit', (code) => resolve({ code, stdout, stderr, url }))
  })
}

t.test('startServer serves one model of every tokenizer kind; the text is generateText\'s', async (t) => {
  const server = await startServer({ exps: Object.values(dirs), port: 0, logger: silent })
  t.teardown(() => server.close())
  const models = await (await fetch(server.url + 'v1/models')).json()
  t.same(models.data.map((m: { id: string }) => m.id).sort(), TOKENIZER_NAMES.map((k) => `tk-${k}`).sort())
  for (const kind of TOKENIZER_NAMES) {
    const name = `tk-${kind}`
    const reference = await loadExperimentModel(dirs[kind])
    t.teardown(() => reference.model.release?.())
    t.equal(reference.tokenizer.name, kind)
    if (kind === 'gpt2') t.equal(reference.tokenizer.vocabSize, 50259, "GPT-2's whole vocabulary")
    const prompt = kind === 'gpt2' ? 'If you add 3 to 4 you get 🎉' : 'If you add 3 to 4 you get'
    const expected = await generateText(reference.model, reference.tokenizer, prompt, { maxNewTokens: 12, temperature: 0 })
    const res = await fetch(server.url + 'v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: name, prompt, max_tokens: 12, temperature: 0 }),
    })
    const body = await res.json()
    t.equal(res.status, 200, `${name}: ${JSON.stringify(body)}`)
    t.equal(body.choices[0].text, expected.text, `${name}: the HTTP text is generateText's`)
    t.ok(body.usage.completion_tokens > 0, `${name} generates`)
    const tok = await (await fetch(server.url + 'v1/tokenize', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: name, text: prompt }),
    })).json()
    t.same(tok.tokens, reference.tokenizer.enc(prompt), `${name}: /v1/tokenize uses the model's tokenizer`)
    const served = await fetch(server.url + `models/${name}/lmp_tokenizer.json`)
    t.equal((await served.json()).tknzr_name, kind, `${name}: the page gets its lmp_tokenizer.json`)
  }
})

t.test('lmp serve --exp <a gpt2-tokenizer model> starts and serves it', async (t) => {
  const run = await serve(['--exp', dirs.gpt2])
  t.ok(run.url, `it printed its URL (stderr: ${run.stderr})`)
  t.match(run.stdout, /^lmp: serving tk-gpt2 at http:\/\/127\.0\.0\.1:\d+\/\n/)
  t.match(run.stdout, /"id":"tk-gpt2"/)
  t.equal(run.code, 0)
})

t.test('a model that cannot load stops the start-up with one line naming it; the others are not served', async (t) => {
  const broken = (await writeExportedModel(root, 'broken-tokenizer', 5)).dir
  writeFileSync(path.join(broken, 'onnx', 'lmp_tokenizer.json'), '{"tknzr_name":"gpt3"}')
  await t.rejects(startServer({ exps: [dirs.character, broken], port: 0, logger: silent }), {
    constructor: LmpError,
    message: new RegExp(`^cannot load tokenizer ${broken}/onnx/lmp_tokenizer\\.json: malformed tokenizer JSON: tknzr_name must be one of`),
  })
  const run = await serve(['--exp', dirs.gpt2, '--exp', broken, '--exp', dirs.BPE])
  t.equal(run.code, 1)
  t.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`)
  t.match(run.stderr, new RegExp(`^lmp: error: cannot load tokenizer ${broken}/onnx/lmp_tokenizer\\.json: `))
  t.notMatch(run.stdout, /serving/, 'it never serves a part of what it was asked to')
})
