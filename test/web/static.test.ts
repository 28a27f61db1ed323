// `npm run build:web` makes a page that works from any static host: web/dist/ served by a plain file server
// (no lmp server, no cross-origin-isolation headers) with an exported model folder beside it, opened with
// ?model=PATH/, generates the same text as onnxruntime-node. Chromium via playwright-core.
import t from 'tap'
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { loadExperimentModel } from '../../server/models.ts'
import { generateText } from '../../src/infer/generate.ts'
import { writeExportedModel } from '../server/exported-model.ts'
import { browserTests, generateOnPage, openPage, repo, waitForState } from './browser.ts'

const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json', '.onnx': 'application/octet-stream', '.map': 'application/json',
}

await browserTests(t, async ({ root, browser }) => {
  const { dir } = await writeExportedModel(root, 'tiny', 3)
  const dist = path.join(repo, 'web', 'dist')
  // A plain static file server: /model/* is the exported model folder, everything else web/dist.
  const server = createServer(async (req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    const file = url.startsWith('/model/') ? path.join(dir, 'onnx', url.slice('/model/'.length)) : path.join(dist, url === '/' ? 'index.html' : url)
    try {
      const body = await readFile(file)
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' })
      res.end(body)
    } catch {
      res.writeHead(404)
      res.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const reference = await loadExperimentModel(dir)
  t.teardown(() => reference.model.release?.())

  await t.test('the built page generates from a static host', async (t) => {
    const { page, problems } = await openPage(browser, `${base}/?model=model/&ep=wasm`)
    const ready = await waitForState(page, ['ready', 'error'])
    t.equal(ready.state, 'ready', ready.status)
    const prompt = 'If you add 12 to 30 you get'
    const expected = await generateText(reference.model, reference.tokenizer, prompt, { maxNewTokens: 20, temperature: 0 })
    const got = await generateOnPage(page, prompt, { maxTokens: 20, temperature: 0 })
    t.equal(got.state, 'done', got.status ?? '')
    t.equal(got.text, expected.text, 'greedy text equals onnxruntime-node\'s')
    // The page probes models/index.json, which a bare static host does not have: the browser logs that 404.
    t.same(problems.filter((p) => !p.includes('Failed to load resource')), [], 'no errors in the page or the worker')
    await page.close()
  })
})
