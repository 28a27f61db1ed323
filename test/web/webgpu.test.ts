// The page's WebGPU path (issue 11): headless Chromium with --enable-unsafe-webgpu finds its SwiftShader
// adapter (a software, "fallback" adapter), so CI can run WebGPU without a GPU. For every architecture the
// page, told to use WebGPU (?ep=webgpu), must generate the greedy text its WASM path and onnxruntime-node
// generate, and the same seeded sample: the default onnxruntime-web bundle's WebGPU path returned LSTM cell
// state equal to the hidden state, which these random models' greedy text survives but sampling, which
// reads the whole distribution, does not. Left to choose, the page must not pick a fallback adapter.
import t from 'tap'
import { pino } from 'pino'
import { startServer } from '../../server/index.ts'
import { loadExperimentModel } from '../../server/models.ts'
import { generateText } from '../../src/infer/generate.ts'
import { ARCHITECTURES } from '../helpers/architectures.ts'
import { writeExportedModel } from '../server/exported-model.ts'
import { browserTests, generateOnPage, openPage, waitForState } from './browser.ts'

const PROMPT = 'If you add 12 to 30 you get'
const TOKENS = 24
const SAMPLED = { prompt: 'a', maxNewTokens: 40, temperature: 1, seed: 42 }

await browserTests(t, async ({ root, browser }) => {
  const dirs: string[] = []
  for (const [i, a] of ARCHITECTURES.entries()) dirs.push((await writeExportedModel(root, a.name, 11 + i, a.sizes)).dir)
  const server = await startServer({ exps: dirs, port: 0, logger: pino({ level: 'silent' }) })
  t.teardown(() => server.close())

  const generateWith = async (name: string, ep: string) => {
    const { page, problems } = await openPage(browser, `${server.url}?model=${encodeURIComponent(name)}&ep=${ep}`)
    const ready = await waitForState(page, ['ready', 'error'], 120_000)
    const got = ready.state === 'ready' ? await generateOnPage(page, PROMPT, { maxTokens: TOKENS, temperature: 0 }) : undefined
    const sampled = ready.state === 'ready' ? await generateOnPage(page, SAMPLED.prompt, { maxTokens: SAMPLED.maxNewTokens, temperature: 1, seed: SAMPLED.seed }) : undefined
    await page.close()
    return { ready, got, sampled, problems }
  }

  for (const a of ARCHITECTURES) {
    await t.test(`${a.name}: WebGPU generates the text WASM and onnxruntime-node generate`, async (t) => {
      const reference = await loadExperimentModel(dirs[ARCHITECTURES.indexOf(a)])
      const expected = await generateText(reference.model, reference.tokenizer, PROMPT, { maxNewTokens: TOKENS, temperature: 0 })
      const sampled = await generateText(reference.model, reference.tokenizer, SAMPLED.prompt, SAMPLED)
      await reference.model.release?.()
      const wasm = await generateWith(a.name, 'wasm')
      const webgpu = await generateWith(a.name, 'webgpu')
      t.match(wasm.ready.status, /· WASM, \d+ threads?/, wasm.ready.status)
      t.match(webgpu.ready.status, /· WebGPU \(.+, software\)/, `WebGPU on the software adapter: ${webgpu.ready.status}`)
      t.equal(wasm.got?.text, expected.text, 'WASM: greedy text equals onnxruntime-node\'s')
      t.equal(webgpu.got?.text, expected.text, 'WebGPU: greedy text equals onnxruntime-node\'s')
      t.equal(wasm.sampled?.text, sampled.text, 'WASM: seeded sample equals onnxruntime-node\'s')
      t.equal(webgpu.sampled?.text, sampled.text, 'WebGPU: seeded sample equals onnxruntime-node\'s')
      t.same([...wasm.problems, ...webgpu.problems], [], 'no errors in the page or the worker')
    })
  }

  await t.test('left to choose, the page does not pick a fallback (software) adapter', async (t) => {
    const { page } = await openPage(browser, `${server.url}?model=LSTM-2000`)
    const hasAdapter = await page.evaluate(async () => Boolean(await navigator.gpu?.requestAdapter()))
    t.ok(hasAdapter, 'the browser offers a WebGPU adapter')
    const ready = await waitForState(page, ['ready', 'error'])
    t.match(ready.status, /· WASM, \d+ threads?/, `WASM chosen over SwiftShader: ${ready.status}`)
    await page.close()
  })
}, { webgpu: true })
