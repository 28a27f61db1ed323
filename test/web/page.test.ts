// The browser acceptance test: Debian's Chromium (driven by playwright-core, headless, never a downloaded
// browser) opens the page served by `startServer`, loads an exported model into onnxruntime-web in the
// worker, generates, and must produce exactly the text onnxruntime-node produces for the same prompt and
// options; the page stays responsive while it generates. Screenshots go to test-output/ for a reviewer.
import t from 'tap'
import path from 'node:path'
import { pino } from 'pino'
import type { Page } from 'playwright-core'
import { startServer } from '../../server/index.ts'
import { loadExperimentModel } from '../../server/models.ts'
import { generateText, type GenerateOptions } from '../../src/infer/generate.ts'
import { writeExportedModel } from '../server/exported-model.ts'
import { browserTests, generateOnPage, openPage as open, shots, waitForState } from './browser.ts'

await browserTests(t, async ({ root, browser }) => {
  const { dir } = await writeExportedModel(root, 'tiny', 3)
  const server = await startServer({ exps: [dir], port: 0, logger: pino({ level: 'silent' }) })
  t.teardown(() => server.close())
  const reference = await loadExperimentModel(dir)
  t.teardown(() => reference.model.release?.())

  const openPage = (query: string) => open(browser, server.url + query)

  await t.test('the page generates the same text as onnxruntime-node', async (t) => {
    const { page, problems } = await openPage('?model=tiny&ep=wasm')
    const ready = await waitForState(page, ['ready', 'error'])
    t.equal(ready.state, 'ready', `model loaded: ${ready.status}`)
    t.match(ready.status, /tiny \(LSTM-2000, \d+ tokens\) · WASM, \d+ threads?/)
    t.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'cross-origin isolated (multi-threaded WASM possible)')

    const prompt = 'If you add 12 to 30 you get'
    const greedy: GenerateOptions = { maxNewTokens: 40, temperature: 0 }
    const expected = await generateText(reference.model, reference.tokenizer, prompt, greedy)
    const got = await generateOnPage(page, prompt, { maxTokens: 40, temperature: 0 })
    t.equal(got.state, 'done', got.status ?? '')
    t.ok(expected.text.length > 0, 'the reference generates something')
    t.equal(expected.finishReason, 'length', 'the reference does not stop early (the stop test relies on it)')
    t.equal(got.text, expected.text, 'greedy text equals onnxruntime-node\'s')
    t.match(got.stats, /40 tokens · [\d.]+ tokens\/s · max tokens/)
    await page.screenshot({ path: path.join(shots, 'web-generate-greedy.png'), fullPage: true })

    // Issue 13, fault 5: a tiny temperature is (in the limit) greedy. Logits divided by 1e-39 overflowed
    // float32, and the page sampled at random; the field must also take 1e-39 as typed. 30 tokens, not
    // 40: a refused field would leave the run above on the page, and the stats tell the two apart.
    const tiny = await generateOnPage(page, prompt, { maxTokens: 30, temperature: 1e-39, seed: 2 })
    t.equal(tiny.state, 'done', tiny.status ?? '')
    t.match(tiny.stats, /^30 tokens · /, 'the page took temperature 1e-39')
    const greedy30 = await generateText(reference.model, reference.tokenizer, prompt, { maxNewTokens: 30, temperature: 0 })
    t.equal(tiny.text, greedy30.text, 'temperature 1e-39 with a seed gives the greedy text')

    // Sampling with a seed draws from the whole distribution: equal text needs equal probabilities too.
    const sampled = await generateText(reference.model, reference.tokenizer, 'a', { maxNewTokens: 60, temperature: 1, seed: 42 })
    const gotSampled = await generateOnPage(page, 'a', { maxTokens: 60, temperature: 1, seed: 42 })
    t.equal(gotSampled.text, sampled.text, 'seeded sampling gives the same text as onnxruntime-node')
    t.same(problems, [], 'no errors in the page or the worker')
    await page.close()
  })

  await t.test('the stop button ends a long generation', async (t) => {
    const { page } = await openPage('?model=tiny&ep=wasm')
    await waitForState(page, ['ready'])
    await page.fill('#prompt', 'If you add 12 to 30 you get')
    await page.fill('#max-tokens', '4096')
    await page.fill('#temperature', '0') // this prompt's greedy text never reaches EOS (see the test above)
    await page.click('#generate')
    await page.waitForFunction(() => (document.getElementById('output-text')!.textContent ?? '').length >= 5)
    await page.click('#stop')
    const end = await waitForState(page, ['done', 'error'], 10_000)
    t.equal(end.state, 'done')
    t.match(await page.textContent('#stats'), /^(\d+) tokens · .* · stopped$/)
    const tokens = Number(/^(\d+)/.exec((await page.textContent('#stats')) ?? '')![1])
    t.ok(tokens < 4096, `stopped after ${tokens} tokens`)
    await page.close()
  })

  await t.test('the page stays responsive while the worker generates', async (t) => {
    const { page } = await openPage('?model=tiny&ep=wasm')
    await waitForState(page, ['ready'])
    // A main-thread timer every 20 ms: inference on the main thread would stall it for the whole run.
    await page.evaluate(() => {
      const w = window as unknown as { ticks: number[] }
      w.ticks = []
      setInterval(() => w.ticks.push(performance.now()), 20)
    })
    await page.fill('#prompt', 'If you add 12 to 30 you get')
    await page.fill('#max-tokens', '1500')
    await page.fill('#temperature', '0')
    const started = await page.evaluate(() => performance.now())
    await page.click('#generate')
    const end = await waitForState(page, ['done', 'error'])
    t.equal(end.state, 'done', end.status)
    const { ticks, ended } = await page.evaluate(() => ({ ticks: (window as unknown as { ticks: number[] }).ticks, ended: performance.now() }))
    const during = ticks.filter((x) => x >= started && x <= ended)
    let longest = 0
    for (let i = 1; i < during.length; i++) longest = Math.max(longest, during[i] - during[i - 1])
    const seconds = (ended - started) / 1000
    t.ok(seconds > 0.3, `the generation took long enough to measure (${seconds.toFixed(2)} s)`)
    t.ok(during.length >= (seconds * 1000) / 20 / 3, `the timer kept ticking: ${during.length} ticks in ${seconds.toFixed(2)} s`)
    t.ok(longest < 250, `no main-thread stall longer than 250 ms (longest gap ${longest.toFixed(0)} ms)`)
    t.match(await page.textContent('#stats'), /^1500 tokens · [\d.]+ tokens\/s · max tokens$/)
    await page.close()
  })

  await t.test('an unknown model shows an error on the page, not a blank screen', async (t) => {
    const { page } = await openPage('?model=models/nope/')
    const end = await waitForState(page, ['error', 'ready'])
    t.equal(end.state, 'error')
    t.match(end.status, /manifest\.json: HTTP 404/)
    await page.screenshot({ path: path.join(shots, 'web-error.png') })
    await page.close()
  })
})
