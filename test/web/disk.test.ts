// Models opened from disk in Chromium: an exported Transformer (test/web/attention-model.ts, the real exporter)
// loads from the file picker, scores like onnxruntime-node, and shows its attention weights, which
// equal the session outputs onnxruntime-node computes; a corrupt model.onnx shows an error on the page,
// not a blank screen. Screenshots go to test-output/.
import t from 'tap'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { pino } from 'pino'
import { startServer } from '../../server/index.ts'
import { loadOrtModel, type OrtLike } from '../../src/infer/ort-model.ts'
import { scoreText } from '../../src/infer/perplexity.ts'
import { loadTokenizer } from '../../src/tokenizer/io.ts'
import { writeExportedModel } from '../server/exported-model.ts'
import { HEADS, LAYERS, writeAttentionModel } from './attention-model.ts'
import { browserTests, openPage, shots, waitForState, waitForViewState } from './browser.ts'

await browserTests(t, async ({ root, browser }) => {
  const { dir: servedDir } = await writeExportedModel(root, 'tiny', 3)
  const server = await startServer({ exps: [servedDir], port: 0, logger: pino({ level: 'silent' }) })
  t.teardown(() => server.close())
  const { onnxDir, manifest, bytes } = await writeAttentionModel(root, 'attn')
  const files = (dir: string) => ['manifest.json', 'model.onnx', 'lmp_tokenizer.json'].map((f) => path.join(dir, f))

  await t.test('a Transformer folder opened from disk scores and shows its attention', async (t) => {
    const { page, problems } = await openPage(browser, `${server.url}?model=tiny&ep=wasm#score`)
    await waitForState(page, ['ready'])
    await page.setInputFiles('#open-files', files(onnxDir))
    const end = await waitForState(page, ['ready', 'error'])
    t.equal(end.state, 'ready', end.status)
    t.match(end.status, /^Ready: model \(from disk\) \(Transformer, 26 tokens\) · WASM/)
    t.equal(await page.$eval('#model', (s) => (s as HTMLSelectElement).selectedOptions[0].text), 'model (from disk)')

    // Longer than the 32-token context: the sliding window, as onnxruntime-node's scoreText does it.
    const text = 'If you add 12 to 30 you get 42. If you add 30 to 12 you get 42 too.'
    const tokenizer = loadTokenizer(path.join(onnxDir, 'lmp_tokenizer.json'))
    const reference = await loadOrtModel(ort as unknown as OrtLike, bytes, manifest)
    const expected = await scoreText(reference, tokenizer, text, { perToken: true })
    await page.fill('#score-text', text)
    await page.click('#score')
    t.equal(await waitForViewState(page, '#view-score', ['scored', 'error']), 'scored', (await page.textContent('#score-summary')) ?? '')
    const logprobs = await page.$$eval('#score-output .tok', (s) => s.map((x) => Number((x as HTMLElement).dataset.logprob)))
    t.equal(logprobs.length, expected.tokens)
    const worst = Math.max(...logprobs.map((l, i) => Math.abs(l - expected.perToken![i].logprob)))
    t.ok(worst <= 1e-4, `per-token log-probabilities equal onnxruntime-node's (max difference ${worst.toExponential(2)})`)

    // Attention: the same text's first tokens, layer 1 head 0 (= head 1 of layer 0 in this stand-in).
    await page.click('#tab-inside')
    t.equal(await page.isVisible('#attention-section'), true, 'the attention view is there for a model with attentions outputs')
    t.equal(await page.isVisible('#attention-none'), false)
    t.equal(await page.$$eval('#att-layer option', (o) => o.length), LAYERS)
    await page.click('#attention')
    await page.waitForFunction(() => Number(document.getElementById('attention-canvas')!.getAttribute('width')) > 0)
    await waitForState(page, ['ready'])
    t.equal(await page.$$eval('#att-head option', (o) => o.length), HEADS)
    t.match(await page.textContent('#attention-readout'), /^32 tokens \(the first of a longer text\): hover a cell$/)
    await page.selectOption('#att-layer', '1')
    await page.selectOption('#att-head', '0')

    const ids = tokenizer.enc(text).slice(0, 32)
    const session = await ort.InferenceSession.create(bytes)
    t.teardown(() => session.release())
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) }
    // An empty key/value cache: the first call of a generation.
    for (const s of manifest.state) feeds[s.input] = new ort.Tensor('float32', new Float32Array(0), s.shape.map((d) => (d === 'batch' ? 1 : typeof d === 'number' ? d : 0)))
    // A lone row: every slot holds a token; positions 0 .. 31.
    feeds.attention_mask = new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length])
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, ids.length])
    const out = await session.run(feeds)
    const att = out['attentions.1']
    t.same(att.dims, [1, HEADS, 32, 32])
    const weight = (q: number, k: number) => (att.data as Float32Array)[(0 * 32 + q) * 32 + k]
    await page.$eval('#attention-canvas', (c) => c.scrollIntoView({ block: 'end' }))
    const canvas = (await (await page.$('#attention-canvas'))!.boundingBox())!
    const cell = (canvas.width - 80) / 32 // web/inside-view.ts: an 80 px label margin, then square cells
    for (const [q, k] of [[5, 2], [20, 20], [31, 0]]) {
      await page.mouse.move(canvas.x + 80 + (k + 0.5) * cell, canvas.y + 80 + (q + 0.5) * cell)
      const readout = (await page.textContent('#attention-readout')) ?? ''
      const m = /\(position (\d+)\) → .* \(position (\d+)\): ([\d.]+)$/.exec(readout)
      t.ok(m, readout)
      t.same([Number(m![1]), Number(m![2])], [q, k], 'the hovered cell')
      t.ok(Math.abs(Number(m![3]) - weight(q, k)) <= 1e-4, `attention ${q} → ${k}: ${m![3]} vs onnxruntime-node's ${weight(q, k).toFixed(4)}`)
    }
    t.equal(weight(5, 6), 0, 'attention is causal')
    await page.screenshot({ path: path.join(shots, 'web-inside-attention.png'), fullPage: true })

    // Its embedding matrix is wte.weight.
    await page.fill('#nn-token', 'a')
    await page.click('#neighbours')
    t.equal(await waitForViewState(page, '#embedding-result', ['done', 'error']), 'done')
    t.match(await page.textContent('#embedding-info'), /^wte\.weight: 26 tokens × 8 dimensions/)
    t.equal(await page.$$eval('#embedding-list li', (l) => l.length), 10)
    t.same(problems, [], 'no errors in the page or the worker')
    await reference.release?.()
    await page.close()
  })

  await t.test('a corrupt model.onnx shows an error on the page, not a blank screen', async (t) => {
    const { page } = await openPage(browser, `${server.url}?model=tiny&ep=wasm`)
    await waitForState(page, ['ready'])

    // Damaged bytes: the checksum in manifest.json catches them.
    const flipped = path.join(root, 'flipped')
    mkdirSync(flipped)
    for (const f of files(onnxDir)) copyFileSync(f, path.join(flipped, path.basename(f)))
    const damaged = Uint8Array.from(bytes)
    for (let i = 100; i < 200; i++) damaged[i] ^= 0xff
    writeFileSync(path.join(flipped, 'model.onnx'), damaged)
    await page.setInputFiles('#open-files', files(flipped))
    let end = await waitForState(page, ['ready', 'error'])
    t.equal(end.state, 'error')
    t.equal(end.status, 'Error: model.onnx does not match the sha256 in manifest.json (a corrupt or partial file)')
    t.equal(await page.isDisabled('#generate'), true, 'nothing to generate with')
    await page.screenshot({ path: path.join(shots, 'web-corrupt-model.png') })

    // Not an ONNX model at all, with a checksum that matches: onnxruntime-web refuses it.
    const garbage = path.join(root, 'garbage')
    mkdirSync(garbage)
    const junk = new TextEncoder().encode('this is not a protobuf '.repeat(40))
    writeFileSync(path.join(garbage, 'model.onnx'), junk)
    writeFileSync(path.join(garbage, 'manifest.json'), JSON.stringify({ ...manifest, sha256: createHash('sha256').update(junk).digest('hex') }))
    copyFileSync(path.join(onnxDir, 'lmp_tokenizer.json'), path.join(garbage, 'lmp_tokenizer.json'))
    await page.setInputFiles('#open-files', files(garbage))
    end = await waitForState(page, ['ready', 'error'])
    t.equal(end.state, 'error')
    t.match(end.status, /^Error: cannot load model\.onnx: .+/)

    // A folder without the files manifest.json names.
    await page.setInputFiles('#open-files', [path.join(garbage, 'manifest.json')])
    end = await waitForState(page, ['error'])
    t.match(end.status, 'Error: model.onnx and lmp_tokenizer.json are not among the opened files')

    // The page recovers: the served model loads again.
    await page.selectOption('#model', 'models/tiny/')
    await page.click('#load')
    end = await waitForState(page, ['ready', 'error'])
    t.equal(end.state, 'ready', end.status)
    t.ok(readFileSync(path.join(onnxDir, 'model.onnx')).equals(Buffer.from(bytes)), 'the good model was left alone')
    await page.close()
  })
})
