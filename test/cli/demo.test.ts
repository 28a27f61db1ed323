// The README's main command, as a new user runs it: `lmp demo` with its defaults trains, exports, scores,
// generates and serves; the demo model reaches test perplexity <= 1.6 and writes >= 90% of the test split's
// sums right (greedy), and its printed example is a right sum; the printed URL serves a page that
// generates the same text in Chromium; `npm run demo` builds that page first; SIGTERM stops it cleanly.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateOnPage, launch, missingBrowser, waitForState } from '../web/browser.ts'
import { DEMO_DEFAULTS } from '../../src/cli/demo.ts'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const root = t.testdir({})
const child = spawn(process.execPath, [join(repo, 'bin/lmp.js'), 'demo', '--port', '0'], {
  env: { ...process.env, LMP_EXP_DIR: root, LMP_DEBUG: '' },
  stdio: ['ignore', 'pipe', 'pipe'],
})
let stdout = ''
let stderr = ''
child.stdout.on('data', (d) => (stdout += d))
child.stderr.on('data', (d) => (stderr += d))
const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
t.teardown(() => { child.kill('SIGKILL') })

// Wait for the server line (training takes about two minutes).
const url = await new Promise<string>((resolve, reject) => {
  const timer = setInterval(() => {
    const m = /^web page: (http:\/\/[^/\s]+)\/$/m.exec(stdout)
    if (m) { clearInterval(timer); resolve(m[1]) }
  }, 200)
  exited.then((code) => { clearInterval(timer); reject(new Error(`lmp demo exited (${code}) before serving:\n${stdout}\n${stderr}`)) })
})

const generated = JSON.parse(/^If you add 12 to 34 you get → (".*")$/m.exec(stdout)?.[1] ?? 'null')

t.test('the demo prints each stage', async (t) => {
  const steps = DEMO_DEFAULTS['total-step']
  t.match(stderr, new RegExp(`train .*${steps}/${steps}`), 'a progress bar')
  t.match(stdout, new RegExp(`trained ${steps} steps: loss [\\d.]+, \\d+ tokens/s \\(wasm\\)`))
  t.match(stdout, /exported ONNX to .*demo\/onnx/)
  const test = Number(/^test: ppl ([\d.]+)/m.exec(stdout)?.[1])
  const valid = Number(/^valid: ppl ([\d.]+)/m.exec(stdout)?.[1])
  t.ok(valid > 1 && Number.isFinite(valid), `valid perplexity ${valid}`)
  t.ok(test > 1 && test <= 1.6, `test perplexity ${test} <= 1.6`)
})

t.test('the demo adds: >= 90% of the test split greedy and exact, and right examples', async (t) => {
  const acc = (ver: string) => /^(\w+): accuracy ([\d.]+)% \((\d+)\/(\d+) greedy sums exact\)(?:, e\.g\. (".*"))?$/m.exec(stdout.split('\n').filter((l) => l.startsWith(`${ver}: accuracy`)).join('\n'))
  const test = acc('test')
  const valid = acc('valid')
  t.ok(test && valid, 'an accuracy line for test and valid')
  t.equal(Number(test?.[4]), 100, 'over the 100 test samples')
  t.equal(Number(valid?.[4]), 4950, 'over the 4,950 valid samples (a > b: reported, not targeted)')
  t.ok(Number(test?.[3]) >= 90, `test accuracy ${test?.[2]}% >= 90%`)
  const example = JSON.parse(test?.[5] ?? 'null') as string | null
  const m = /^if you add (\d+) to (\d+) you get (\d+) \.$/.exec(example ?? '')
  t.ok(m && Number(m[1]) + Number(m[2]) === Number(m[3]), `the test example is a right sum: ${example}`)
  t.equal(generated, ' 46 .', 'If you add 12 to 34 you get 46 .')
})

t.test('the server answers with the same greedy text', async (t) => {
  t.equal((await fetch(`${url}/health`)).status, 200)
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'If you add 12 to 34 you get', max_tokens: 40, temperature: 0 }),
  })
  t.equal(res.status, 200)
  const body = await res.json()
  t.equal(body.choices[0].text, generated, 'HTTP greedy text = the demo\'s printed text')
})

t.test('the printed URL serves a page that generates the same text in Chromium', async (t) => {
  const missing = missingBrowser()
  if (missing) {
    if (process.env.CI === 'true') t.fail(missing)
    else t.comment(`skipped: ${missing}`)
    return
  }
  const browser = await launch()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`${url}/?model=demo&ep=wasm`)
  const ready = await waitForState(page, ['ready', 'error'])
  t.equal(ready.state, 'ready', ready.status ?? '')
  const got = await generateOnPage(page, 'If you add 12 to 34 you get', { maxTokens: 40, temperature: 0 })
  t.equal(got.state, 'done', got.status ?? '')
  t.equal(got.text, generated, 'the page\'s greedy text = the demo\'s')
  mkdirSync(join(repo, 'test-output'), { recursive: true })
  await page.screenshot({ path: join(repo, 'test-output', 'demo-page.png'), fullPage: true })
})

t.test('`npm run demo` (the README\'s command) builds the page before it runs lmp demo', async (t) => {
  // On a fresh clone nothing else has built web/dist; without it the printed URL would answer 503.
  const r = spawnSync('npm', ['run', 'demo', '--silent', '--', '--help'], { cwd: repo, encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^build:web: web\/dist in \d+ ms\nUsage: lmp demo/m, 'the page is built, then the demo runs')
  t.ok(existsSync(join(repo, 'web', 'dist', 'index.html')) && existsSync(join(repo, 'web', 'dist', 'worker.js')), 'web/dist holds the page and its worker')
})

t.test('SIGTERM stops the demo cleanly', async (t) => {
  child.kill('SIGTERM')
  t.equal(await exited, 0)
})
