// The page's Score, Inside and Training views in Chromium, against a served exported model: per-token
// log-probabilities and perplexity equal the server's /v1/perplexity; the embedding neighbours and
// analogies equal a cosine search over model.onnx's emb.weight done here; the training view draws the
// experiment's metrics.jsonl (served beside the model, or opened from disk) and says clearly when there
// is none. Screenshots of each view go to test-output/.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { pino } from 'pino'
import type { Page } from 'playwright-core'
import { decodeModel } from '../../onnx/proto.ts'
import { startServer } from '../../server/index.ts'
import { loadTokenizer } from '../../src/tokenizer/io.ts'
import { writeExportedModel } from '../server/exported-model.ts'
import { browserTests, openPage, shots, waitForState, waitForViewState } from './browser.ts'

/** A training run's log: loss falling from 3 towards 1 every 10 steps, an evaluation every 50. */
function metricsLines(steps: number): string {
  const lines: string[] = []
  for (let step = 10; step <= steps; step += 10) {
    lines.push(JSON.stringify({ step, loss: 1 + 2 * Math.exp(-step / 100) + 0.05 * Math.sin(step), lr: 0.01, tokensPerSec: 9000, time: step * 0.1 }))
    if (step % 50 === 0) lines.push(JSON.stringify({ step, valPpl: Math.exp(1.1 + Math.exp(-step / 100)), valLoss: 1.1 + Math.exp(-step / 100) }))
  }
  return lines.join('\n') + '\n{"step": 3' // a line cut short by a killed run
}

await browserTests(t, async ({ root, browser }) => {
  const { dir } = await writeExportedModel(root, 'tiny', 3)
  writeFileSync(path.join(dir, 'metrics.jsonl'), metricsLines(300))
  const { dir: bareDir } = await writeExportedModel(root, 'bare', 4) // no metrics.jsonl
  const server = await startServer({ exps: [dir, bareDir], port: 0, logger: pino({ level: 'silent' }) })
  t.teardown(() => server.close())

  const ready = async (query: string): Promise<{ page: Page; problems: string[] }> => {
    const opened = await openPage(browser, server.url + query)
    const end = await waitForState(opened.page, ['ready', 'error'])
    t.equal(end.state, 'ready', end.status)
    return opened
  }

  await t.test('the score view equals /v1/perplexity', async (t) => {
    const { page, problems } = await ready('?model=tiny&ep=wasm#score')
    const text = 'If you add 12 to 30 you get 42. Then you add 7 and get 49.'
    await page.fill('#score-text', text)
    await page.click('#score')
    t.equal(await waitForViewState(page, '#view-score', ['scored', 'error']), 'scored', (await page.textContent('#score-summary')) ?? '')

    const res = await fetch(`${server.url}v1/perplexity`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', text, per_token: true, top_logprobs: 5 }),
    })
    const api = (await res.json()) as { perplexity: number; tokens: number; per_token: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[] }
    const shown = await page.$$eval('#score-output .tok', (spans) => spans.map((s) => ({ text: s.textContent ?? '', logprob: Number((s as HTMLElement).dataset.logprob) })))
    t.equal(shown.length, api.tokens, 'one span per predicted token')
    const worst = Math.max(...shown.map((s, i) => Math.abs(s.logprob - api.per_token[i].logprob)))
    t.ok(worst <= 1e-4, `per-token log-probabilities equal the server's (max difference ${worst.toExponential(2)})`)
    const ppl = Number(await page.$eval('#score-output', (el) => (el as HTMLElement).dataset.perplexity))
    t.ok(Math.abs(ppl - api.perplexity) <= 1e-4, `perplexity ${ppl} equals the server's ${api.perplexity}`)
    t.match(await page.textContent('#score-summary'), new RegExp(`^${api.tokens} tokens · perplexity ${api.perplexity.toFixed(3)} · `))
    // The spans read as the text does once the tokenizer has seen it (unknown characters as <unk>), then EOS.
    const tokenizer = loadTokenizer(path.join(dir, 'onnx', 'lmp_tokenizer.json'))
    const spelled = tokenizer.dec(tokenizer.enc(text), { rmSpTks: true })
    t.match(spelled, /^If you add 12 to 30 you get 42\. <unk>/, 'the text has known and unknown characters')
    t.equal(shown.map((s) => s.text).join(''), `${spelled}<eos>`, 'the coloured tokens spell the text')

    // Hover: the token's probability and the model's top 5 guesses.
    const i = 5
    await page.hover(`#score-output .tok >> nth=${i}`)
    const tip = await page.$$eval('#tooltip li', (lis) => lis.map((li) => li.textContent))
    t.same(tip, api.per_token[i].top_logprobs.map((a) => `${JSON.stringify(a.token)} ${probabilityText(a.logprob)}`), 'the tooltip lists the top alternatives')
    t.match(await page.textContent('#tooltip .tooltip-head'), `p = ${probabilityText(api.per_token[i].logprob)}`)
    await page.screenshot({ path: path.join(shots, 'web-score.png'), fullPage: true })
    t.same(problems, [], 'no errors in the page or the worker')
    await page.close()
  })

  await t.test('the inside view lists embedding neighbours and analogies by cosine similarity', async (t) => {
    const tokenizer = loadTokenizer(path.join(dir, 'onnx', 'lmp_tokenizer.json'))
    const emb = decodeModel(readFileSync(path.join(dir, 'onnx', 'model.onnx'))).graph.initializers.find((x) => x.name === 'emb.weight')!
    const [rows, dims] = emb.dims
    const vec = (id: number) => Array.from(emb.data as Float32Array).slice(id * dims, (id + 1) * dims)
    const unit = (v: number[]) => { const n = Math.hypot(...v); return v.map((x) => x / n) }
    const expected = (query: number[], skip: number[], count: number) => Array.from({ length: rows }, (_, id) => id)
      .filter((id) => !skip.includes(id))
      .map((id) => ({ id, cosine: unit(vec(id)).reduce((s, x, d) => s + x * unit(query)[d], 0) }))
      .sort((a, b) => b.cosine - a.cosine || a.id - b.id)
      .slice(0, count)
    const id = (s: string) => tokenizer.enc(s)[1]

    const { page, problems } = await ready('?model=tiny&ep=wasm')
    await page.click('#tab-inside')
    await page.fill('#nn-token', 'e')
    await page.fill('#nn-count', '6')
    await page.click('#neighbours')
    t.equal(await waitForViewState(page, '#embedding-result', ['done', 'error']), 'done')
    const listed = async () => page.$$eval('#embedding-list li', (lis) => lis.map((li) => ({ id: Number((li as HTMLElement).dataset.id), cosine: Number(li.querySelector('.cosine')!.textContent) })))
    const near = expected(vec(id('e')), [id('e')], 6)
    t.same((await listed()).map((x) => x.id), near.map((x) => x.id), 'the neighbours of "e", closest first')
    t.same((await listed()).map((x) => x.cosine), near.map((x) => +x.cosine.toFixed(3)), 'with their cosine similarities')
    t.match(await page.textContent('#embedding-info'), /emb\.weight: 26 tokens × 16 dimensions/)
    t.equal(await page.isVisible('#attention-section'), false, 'no attention view for a recurrent model')
    t.equal(await page.isVisible('#attention-none'), true)
    await page.screenshot({ path: path.join(shots, 'web-inside-embedding.png'), fullPage: true })

    await page.fill('#an-a', 'a')
    await page.fill('#an-b', 'o')
    await page.fill('#an-c', 'e')
    await page.click('#analogy')
    t.equal(await waitForViewState(page, '#embedding-result', ['done', 'error']), 'done')
    const [a, b, c] = ['a', 'o', 'e'].map((s) => unit(vec(id(s))))
    const analogy = expected(a.map((x, d) => x - b[d] + c[d]), [id('a'), id('o'), id('e')], 6)
    t.same((await listed()).map((x) => x.id), analogy.map((x) => x.id), 'a − o + e, closest first')
    t.match(await page.textContent('#embedding-query'), 'Closest to "a" − "o" + "e":')

    await page.fill('#nn-token', 'xyz')
    await page.click('#neighbours')
    t.equal(await waitForViewState(page, '#embedding-result', ['done', 'error']), 'error')
    t.match(await page.textContent('#embedding-query'), /'xyz' is 3 tokens/)
    t.equal(await page.evaluate(() => document.body.dataset.state), 'ready', 'a bad token is the view\'s error, not the page\'s')
    t.same(problems, [], 'no errors in the page or the worker')
    await page.close()
  })

  await t.test('the training view draws the curves of metrics.jsonl', async (t) => {
    const { page, problems } = await ready('?model=tiny&ep=wasm#training')
    // Served beside the model: models/NAME/metrics.jsonl.
    t.equal(await waitForViewState(page, '#view-training', ['drawn', 'missing', 'error']), 'drawn', (await page.textContent('#training-status')) ?? '')
    t.match(await page.textContent('#training-status'), 'metrics.jsonl: 30 training and 6 validation points, 1 unreadable lines skipped')
    t.equal(await page.$$eval('svg.chart', (s) => s.length), 3, 'loss, validation perplexity and learning rate')

    // Opened from disk.
    await page.setInputFiles('#open-metrics', path.join(dir, 'metrics.jsonl'))
    t.equal(await waitForViewState(page, '#view-training', ['drawn', 'missing', 'error']), 'drawn')
    const curve = async (series: string) => page.$eval(`polyline[data-series="${series}"]`, (p) => p.getAttribute('points')!.split(' ').length)
    t.equal(await curve('loss'), 30, 'a loss curve with every logged step')
    t.equal(await curve('val perplexity'), 6, 'a validation perplexity curve with every evaluation')
    t.match(await page.textContent('#training-summary'), /step 300: loss [\d.]+ · best validation perplexity [\d.]+ at step 300 · median 9000 tokens\/s/)
    // The readout under the pointer.
    const box = (await page.$('svg.chart'))!
    const b = (await box.boundingBox())!
    await page.mouse.move(b.x + b.width * 0.5, b.y + b.height * 0.5)
    t.match(await page.textContent('svg.chart .readout'), /^step \d+: loss [\d.]+$/)
    await page.screenshot({ path: path.join(shots, 'web-training.png'), fullPage: true })

    // A model without metrics.jsonl: a clear message, no chart.
    await page.selectOption('#model', { label: 'bare' })
    await page.click('#load')
    await waitForState(page, ['ready'])
    t.equal(await waitForViewState(page, '#view-training', ['drawn', 'missing', 'error']), 'missing')
    t.match(await page.textContent('#training-status'), /No training metrics for this model/)
    t.equal(await page.$$eval('svg.chart', (s) => s.length), 0)
    // The 404s of the absent metrics.jsonl are expected; nothing else may go wrong.
    t.same(problems.filter((p) => !/Failed to load resource: .* 404/.test(p)), [], 'no errors in the page or the worker')
    await page.close()
  })
})

/** The tooltip's probability format (web/dom.ts). */
function probabilityText(logprob: number): string {
  const p = Math.exp(logprob)
  return p >= 0.001 ? p.toFixed(3) : p.toExponential(1)
}
