// The page opens a model of every tokenizer kind (character, whitespace, BPE, gpt2) and generates what
// onnxruntime-node generates. A gpt2 model needs GPT-2's vocabulary in the worker: the page fetches
// gpt2-ranks.js for it, and only for it.
import t from 'tap'
import { pino } from 'pino'
import { startServer } from '../../server/index.ts'
import { loadExperimentModel } from '../../server/models.ts'
import { generateText, promptIds } from '../../src/infer/generate.ts'
import { tokenTexts } from '../../src/tokenizer/pieces.ts'
import { TOKENIZER_NAMES } from '../../src/tokenizer/index.ts'
import { writeExportedModel } from '../server/exported-model.ts'
import { fineTunedGpt2 } from '../helpers/gpt2-finetuned.ts'
import { browserTests, generateOnPage, openPage, waitForState, waitForViewState } from './browser.ts'

await browserTests(t, async ({ root, browser }) => {
  const dirs: string[] = []
  for (const kind of TOKENIZER_NAMES) dirs.push((await writeExportedModel(root, `tk-${kind}`, 5, {}, kind)).dir)
  // The course's project at test size: a GPT-2-layout checkpoint fine-tuned with --init-from, exported.
  const fineTuned = await fineTunedGpt2(`${root}/course`)
  const server = await startServer({ exps: [...dirs, fineTuned.dir], port: 0, logger: pino({ level: 'silent' }) })
  let stopped = false
  t.teardown(() => (stopped ? undefined : server.close()))

  for (const [i, kind] of TOKENIZER_NAMES.entries()) {
    await t.test(`a ${kind}-tokenizer model generates on the page as in onnxruntime-node`, async (t) => {
      const reference = await loadExperimentModel(dirs[i])
      t.teardown(() => reference.model.release?.())
      const { page, problems } = await openPage(browser, server.url + `?model=tk-${kind}&ep=wasm`)
      const ranks: string[] = []
      page.on('request', (r) => { if (r.url().endsWith('/gpt2-ranks.js')) ranks.push(r.url()) })
      const ready = await waitForState(page, ['ready', 'error'])
      t.equal(ready.state, 'ready', `model loaded: ${ready.status}`)
      t.match(ready.status, new RegExp(`tk-${kind} \\(LSTM-2000, ${reference.tokenizer.vocabSize} tokens\\)`))
      t.equal(ranks.length, kind === 'gpt2' ? 1 : 0, "GPT-2's vocabulary is fetched for a gpt2 model only")

      const prompt = kind === 'gpt2' ? 'If you add 3 to 4 you get 🎉' : 'If you add 3 to 4 you get'
      const expected = await generateText(reference.model, reference.tokenizer, prompt, { maxNewTokens: 16, temperature: 0 })
      t.ok(expected.text.length > 0, 'the reference generates something')
      const got = await generateOnPage(page, prompt, { maxTokens: 16, temperature: 0 })
      t.equal(got.state, 'done', got.status ?? '')
      t.equal(got.text, expected.text, 'greedy text equals onnxruntime-node\'s')
      // The output area shows the prompt as the model reads it (its tokens' own texts) and then the new
      // text, so the two read as one text: a BPE prompt's last word-final token carries the space after
      // it ('get '), which the new text then does not start with.
      const promptText = tokenTexts(reference.tokenizer, promptIds(reference.tokenizer, prompt))!.join('')
      t.equal(`${got.shownPrompt}${got.text}`, promptText + expected.text, 'the shown text is the prompt\'s token texts, then the new text')
      if (kind === 'BPE') t.equal(got.shownPrompt, `${prompt} `, 'a BPE prompt shows the space its last token carries')
      t.same(problems, [], 'no errors in the page or the worker')
      await page.close()
    })
  }

  await t.test('a model fine-tuned from a GPT-2 checkpoint (--init-from) generates on the page as in onnxruntime-node', async (t) => {
    const reference = await loadExperimentModel(fineTuned.dir)
    t.teardown(() => reference.model.release?.())
    const { page, problems } = await openPage(browser, server.url + `?model=${fineTuned.expName}&ep=wasm`)
    const ready = await waitForState(page, ['ready', 'error'])
    t.match(ready.status, new RegExp(`${fineTuned.expName} \\(Transformer, 50259 tokens\\)`), `model loaded: ${ready.status}`)
    for (const prompt of ['ROMEO:', 'First Citizen: We are']) {
      const expected = await generateText(reference.model, reference.tokenizer, prompt, { maxNewTokens: 12, temperature: 0 })
      const got = await generateOnPage(page, prompt, { maxTokens: 12, temperature: 0 })
      t.equal(got.state, 'done', got.status ?? '')
      t.equal(got.text, expected.text, `${JSON.stringify(prompt)}: greedy text equals onnxruntime-node's`)
    }
    t.same(problems, [], 'no errors in the page or the worker')
    await page.close()
  })

  await t.test('the score view spells a gpt2 text whose emoji span several tokens', async (t) => {
    const { page, problems } = await openPage(browser, server.url + '?model=tk-gpt2&ep=wasm#score')
    t.equal((await waitForState(page, ['ready', 'error'])).state, 'ready')
    const text = 'I got 🎉 🎉 and é.'
    await page.fill('#score-text', text)
    await page.click('#score')
    t.equal(await waitForViewState(page, '#view-score', ['scored', 'error']), 'scored')
    const shown = await page.$$eval('#score-output .tok', (spans) => spans.map((s) => s.textContent ?? ''))
    t.equal(shown.join(""), `${text}<|endoftext|>`, "the coloured tokens spell the text, then EOS (GPT-2's <|endoftext|>)")
    t.notOk(shown.some((x) => x.includes('\uFFFD')), 'no token shows half a character')
    t.same(problems, [])
    await page.close()
  })

  // Last: it stops the server.
  await t.test('after one visit, a gpt2 model opens and generates offline', async (t) => {
    const reference = await loadExperimentModel(dirs[TOKENIZER_NAMES.indexOf('gpt2')])
    t.teardown(() => reference.model.release?.())
    const context = await browser.newContext() // one profile for both visits
    t.teardown(() => context.close())
    const { page, problems } = await openPage(context, server.url + '?model=tk-gpt2&ep=wasm')
    t.equal((await waitForState(page, ['ready', 'error'])).state, 'ready')
    t.ok(await page.evaluate(async () => Boolean((await navigator.serviceWorker.ready).active)), 'the service worker is active')
    // The worker stores the model's files after it reports ready (model.onnx, then tokenizer.json).
    await page.waitForFunction(async () => (await (await caches.open('lmp-models-v1')).keys()).some((r) => r.url.includes('tokenizer.json')), null, { polling: 100 })
    await server.close()
    stopped = true
    await page.reload()
    const again = await waitForState(page, ['ready', 'error'])
    t.match(again.status, /^Ready: tk-gpt2 \(LSTM-2000, 50259 tokens\) · WASM, \d+ threads? · from cache$/)
    const prompt = 'If you add 3 to 4 you get 🎉'
    const expected = await generateText(reference.model, reference.tokenizer, prompt, { maxNewTokens: 8, temperature: 0 })
    const got = await generateOnPage(page, prompt, { maxTokens: 8, temperature: 0 })
    t.equal(got.text, expected.text, 'offline, it generates what onnxruntime-node does')
    t.same(problems, [], 'no errors in the page or the worker')
  })
})
