// Offline: after one visit, the page opens and runs its model with the server stopped. The service
// worker (web/sw.ts) keeps the page, the onnxruntime-web runtime and the model list; the inference
// worker keeps the model files in the Cache API under their sha256. Chromium via playwright-core.
import t from 'tap'
import path from 'node:path'
import { pino } from 'pino'
import { startServer } from '../../server/index.ts'
import { loadExperimentModel } from '../../server/models.ts'
import { generateText } from '../../src/infer/generate.ts'
import { writeExportedModel } from '../server/exported-model.ts'
import { browserTests, openPage, shots, waitForState } from './browser.ts'

await browserTests(t, async ({ root, browser }) => {
  const { dir } = await writeExportedModel(root, 'tiny', 3)
  const reference = await loadExperimentModel(dir)
  t.teardown(() => reference.model.release?.())

  await t.test('a second load works with the server stopped', async (t) => {
    const server = await startServer({ exps: [dir], port: 0, logger: pino({ level: 'silent' }) })
    let stopped = false
    t.teardown(() => (stopped ? undefined : server.close()))
    // One browser profile across both visits (a new context would start with empty caches).
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const { page } = await openPage(context, `${server.url}?model=tiny&ep=wasm`)
    const first = await waitForState(page, ['ready', 'error'])
    t.equal(first.state, 'ready', first.status)
    t.notMatch(first.status, /from cache/, 'the first visit downloads the model')
    // The service worker is active once it has stored the page and the runtime.
    t.ok(await page.evaluate(async () => Boolean((await navigator.serviceWorker.ready).active)), 'the service worker is active')

    await server.close()
    stopped = true
    t.rejects(fetch(server.url), 'the server is gone')

    const problems: string[] = []
    page.on('pageerror', (err) => problems.push(err.message))
    await page.reload()
    const second = await waitForState(page, ['ready', 'error'])
    t.equal(second.state, 'ready', second.status)
    t.match(second.status, /^Ready: tiny \(LSTM-2000, 26 tokens\) · WASM, \d+ threads? · from cache$/)

    const prompt = 'If you add 12 to 30 you get'
    const expected = await generateText(reference.model, reference.tokenizer, prompt, { maxNewTokens: 20, temperature: 0 })
    await page.fill('#prompt', prompt)
    await page.fill('#max-tokens', '20')
    await page.fill('#temperature', '0')
    await page.click('#generate')
    const end = await waitForState(page, ['done', 'error'])
    t.equal(end.state, 'done', end.status)
    t.equal(await page.textContent('#output-text'), expected.text, 'offline, it generates what onnxruntime-node does')
    t.same(problems, [], 'no errors in the page')
    await page.screenshot({ path: path.join(shots, 'web-offline.png') })
  })
})
