// In-browser generation speed next to onnxruntime-node's, for the same exported model: an LSTM-2000
// with the sizes the demo used before issue 15 (random weights: speed does not depend on them), greedy, one token a call with
// the state carried. The browser number is what the page shows (Chromium headless, onnxruntime-web WASM
// in the worker, on 1 and 2 threads), tokens over the wall time of the whole generation,
// messages to the page included. Medians of several runs after a warm-up; JSON lines via report().
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { createModel, initWeights, MODEL_DEFAULTS } from '../models/lm.ts'
import { exportToDir } from '../onnx/export.ts'
import { startServer } from '../server/index.ts'
import { loadExperimentModel } from '../server/models.ts'
import { demoSamples } from '../src/data/demo.ts'
import { generateText } from '../src/infer/generate.ts'
import { createTokenizer } from '../src/tokenizer/index.ts'
import { saveTokenizerFiles } from '../src/exp.ts'
import { CHROMIUM, launch, preparePage, waitForState } from '../test/web/browser.ts'
import { median, report } from './util.ts'

const TOKENS = 200
const RUNS = 5
const PROMPT = 'If you add 12 to 34 you get'

if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} is missing: the browser benchmark needs Debian's chromium`)
  process.exit(1)
}
preparePage()

// The demo model's shape, random weights in lmp's default init range.
const root = mkdtempSync(join(tmpdir(), 'lmp-web-bench-'))
const dir = join(root, 'demo-shape')
mkdirSync(dir)
const tokenizer = createTokenizer('character', { isUncased: true })
tokenizer.buildVocab(demoSamples('train'))
await saveTokenizerFiles(dir, tokenizer)
const config = {
  ...MODEL_DEFAULTS, model: 'LSTM-2000' as const, vocabSize: tokenizer.vocabSize,
  // The LSTM the demo trained before it moved to a Transformer (issue 15), kept so the numbers compare.
  dEmb: 64, nBlk: 64, dBlk: 2, nLyr: 1,
}
const model = createModel(config)
let seed = 1
const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647)
const params = model.params()
const weights: Record<string, { shape: number[]; data: Float32Array }> = {}
for (const [k, data] of Object.entries(initWeights(model, random))) weights[k] = { shape: params[k].shape, data }
await exportToDir(model, weights, dir)
const label = `LSTM-2000 (former demo sizes: d-emb ${config.dEmb}, n-blk ${config.nBlk}, d-blk ${config.dBlk})`
// Greedy decoding may end at EOS: every run of a runtime generates the same tokens, so the rates compare.
const options = { maxNewTokens: TOKENS, temperature: 0 }

try {
  for (const threads of [1, 2]) {
    const served = await loadExperimentModel(dir, { numThreads: threads })
    const rates: number[] = []
    let tokens = 0
    for (let run = 0; run <= RUNS; run++) {
      const t0 = performance.now()
      const out = await generateText(served.model, served.tokenizer, PROMPT, options)
      tokens = out.tokenIds.length
      if (run > 0) rates.push(tokens / ((performance.now() - t0) / 1000))
    }
    report('web-generate', { model: label, runtime: 'onnxruntime-node', threads, tokens, runs: RUNS, tokensPerSec: Math.round(median(rates)) })
    await served.model.release?.()
  }

  const server = await startServer({ exps: [dir], port: 0, logger: pino({ level: 'silent' }) })
  const browser = await launch()
  try {
    for (const threads of [1, 2]) {
      const page = await browser.newPage()
      await page.goto(`${server.url}?model=demo-shape&ep=wasm&threads=${threads}`)
      const ready = await waitForState(page, ['ready', 'error'])
      if (ready.state !== 'ready') throw new Error(ready.status)
      const shownThreads = Number(/WASM, (\d+) thread/.exec(ready.status)?.[1])
      await page.fill('#prompt', PROMPT)
      await page.fill('#max-tokens', String(TOKENS))
      await page.fill('#temperature', '0')
      const rates: number[] = []
      let tokens = 0
      const firstTokenMs: number[] = []
      for (let run = 0; run <= RUNS; run++) {
        await page.click('#generate')
        const end = await waitForState(page, ['done', 'error'])
        if (end.state !== 'done') throw new Error(end.status)
        const stats = await page.$eval('#stats', (el) => ({ ...(el as HTMLElement).dataset }))
        tokens = Number(stats.tokens)
        if (run > 0) {
          rates.push(tokens / Number(stats.seconds))
          firstTokenMs.push(Number(stats.firstTokenSeconds) * 1000)
        }
      }
      report('web-generate', {
        model: label, runtime: 'onnxruntime-web (Chromium, WASM, worker)', threads: shownThreads, tokens, runs: RUNS,
        tokensPerSec: Math.round(median(rates)), firstTokenMsMedian: +median(firstTokenMs).toFixed(1),
      })
      await page.close()
    }
  } finally {
    await browser.close()
    await server.close()
  }
} finally {
  rmSync(root, { recursive: true, force: true })
}
