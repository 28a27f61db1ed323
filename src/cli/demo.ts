// `lmp demo`: the whole pipeline on the built-in demo dataset — train (TF.js) → export (ONNX) →
// perplexity and the accuracy of greedy sums on valid and test → generate → serve (HTTP + the web page) —
// in about two minutes.
import type { Command } from './index.ts'
import { MODEL_OPTIONS, TRAIN_OPTIONS, trainModel } from './train-model.ts'
import { loadDataset } from '../data/index.ts'
import { openExperiment, servingModel } from './common.ts'
import { expRoot } from '../exp.ts'

export const DEMO_MODEL = 'Transformer'

// A 2-layer Transformer (d_model 64, learned positions): 2,400 steps of 32 windows, about 70 s of training on
// an idle 2-core machine on the WASM backend (3.1M tokens at ~44k tokens/s). Measured with these settings
// (seeds 42, 1, 2, 3, 4, 5): see README; at 1,600 steps seeds 3 and 42 stayed at 42% and 68% of the test
// split. The LSTM the demo trained before (500 steps, test perplexity ~1.51) wrote the wrong sum for most
// prompts; LSTM and GRU settings stayed under 20% of the test split in two minutes.
export const DEMO_DEFAULTS: Record<string, unknown> = {
  'exp-name': 'demo', 'is-uncased': true, 'batch-size': 32, lr: 1e-2, 'max-seq-len': 40,
  'total-step': 2400, 'lr-schedule': 'cosine', 'weight-decay': 0.1, 'max-norm': 1,
  'ckpt-step': 2400, 'log-step': 50,
  'n-lyr': 2, 'd-model': 64, 'n-head': 4, 'd-ff': 128, positions: 'learned',
}

const withDefaults = (table: Record<string, any>) =>
  Object.fromEntries(Object.entries(table).map(([k, v]) =>
    // The demo's own default replaces a derived one that the help names (such as --warmup-step's).
    [k, k in DEMO_DEFAULTS ? { ...v, default: DEMO_DEFAULTS[k], help: v.help?.replace(/ \(default: [^)]*\)$/, '') } : v]))

export const command: Command = {
  spec: {
    name: 'demo',
    summary: 'Train a small Transformer on the demo data, export to ONNX, score (perplexity, accuracy of greedy sums), generate, then serve it with the web page.',
    options: {
      ...withDefaults(TRAIN_OPTIONS),
      // Derived, so that a short demo (--total-step 50) works: 150 of the default 2,400 steps.
      'warmup-step': { ...TRAIN_OPTIONS['warmup-step'], help: 'linear warmup steps, then the --lr-schedule decay (default: a sixteenth of --total-step)' },
      ...withDefaults(MODEL_OPTIONS),
      prompt: { type: 'string', default: 'If you add 12 to 34 you get', help: 'prompt to continue' },
      serve: { type: 'boolean', default: true, help: 'start the server at the end (--no-serve to stop after generating)' },
      host: { type: 'string', default: '127.0.0.1', help: 'server address' },
      port: { type: 'int', default: 8080, min: 0, max: 65535, help: 'server port (0: any free port)' },
    },
  },
  async run({ options: o }) {
    const dset = o.dsetName
    console.log(`== 1/4 train ${DEMO_MODEL} on '${dset}' (TF.js)`)
    await trainModel(DEMO_MODEL, { ...o, warmupStep: o.warmupStep ?? Math.max(1, Math.round(o.totalStep / 16)) })

    console.log(`== 2/4 perplexity (onnxruntime-node, exp/${o.expName}/onnx/model.onnx)`)
    const exp = openExperiment(o.expName)
    const { model } = await servingModel(exp, -1)
    const { scoreTexts } = await import('../infer/perplexity.ts')
    const { sumAccuracy } = await import('../infer/sum-accuracy.ts')
    for (const ver of ['valid', 'test']) {
      const samples = await loadDataset(dset, ver, { dataPath: o.dataPath })
      const s = await scoreTexts(model, exp.tokenizer, samples)
      console.log(`${ver}: ppl ${s.ppl.toFixed(4)} (${s.natsPerToken.toFixed(4)} nats/token over ${s.tokens} tokens)`)
      if (dset !== 'demo') continue
      // The task itself: does greedy decoding write the right sum? (valid holds a > b, layouts training never shows)
      const a = await sumAccuracy(model, exp.tokenizer, samples)
      const example = a.texts.find((text, i) => text === exp.tokenizer.norm(samples[i]))
      console.log(`${ver}: accuracy ${(100 * a.accuracy).toFixed(1)}% (${a.correct}/${a.total} greedy sums exact)${example ? `, e.g. ${JSON.stringify(example)}` : ''}`)
    }

    console.log('== 3/4 generate (greedy)')
    const { generateText } = await import('../infer/generate.ts')
    const out = await generateText(model, exp.tokenizer, o.prompt, { maxNewTokens: 40, temperature: 0 })
    console.log(`${o.prompt} → ${JSON.stringify(out.text)}`)
    await model.release?.()

    if (!o.serve) return
    console.log('== 4/4 serve')
    const { startServer } = await import('../../server/index.ts')
    const { pino } = await import('pino')
    const logger = pino({ level: process.env.LMP_LOG_LEVEL ?? 'warn' })
    const server = await startServer({ exps: [o.expName], expRoot: expRoot(), host: o.host, port: o.port, logger })
    const base = server.url.replace(/\/+$/, '')
    console.log(`web page: ${base}/`)
    console.log(`API:      curl -s ${base}/v1/completions -H 'content-type: application/json' -d '{"prompt":"If you add 3 to 4 you get","max_tokens":8,"temperature":0}'`)
    console.log('press Ctrl-C to stop')
    await new Promise<void>((resolve) => {
      const stop = () => server.close().then(resolve)
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
  },
}
