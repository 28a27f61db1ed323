// `lmp eval-dset-ppl <dset>`: perplexity of a dataset split, per checkpoint, with onnxruntime-node.
import type { Command } from './index.ts'
import { DEVICES, type Device } from '../infer/device.ts'
import { DATASETS, loadDataset } from '../data/index.ts'
import { listCheckpoints, selectCheckpoints } from '../exp.ts'
import { LmpError } from '../errors.ts'
import { ProgressBar } from '../progress.ts'
import { openExperiment, stepModelFor } from './common.ts'

export const command: Command = {
  spec: {
    name: 'eval-dset-ppl',
    summary: 'Perplexity of a dataset split for a range of checkpoints (onnxruntime-node).',
    positionals: [{ name: 'dset', help: 'dataset', choices: Object.keys(DATASETS) }],
    options: {
      'exp-name': { type: 'string', default: 'my_model_exp', help: 'model experiment' },
      ver: { type: 'string', help: "dataset version (split), e.g. valid or test (default: the dataset's default)" },
      'data-path': { type: 'string', help: 'a local copy of the dataset (file or folder)' },
      'first-ckpt': { type: 'int', default: 0, min: -1, help: 'first checkpoint step (-1: only the latest)' },
      'last-ckpt': { type: 'int', default: -1, min: -1, help: 'last checkpoint step (-1: the latest)' },
      'batch-size': { type: 'int', default: 32, min: 1, help: 'texts per model call' },
      json: { type: 'boolean', default: false, help: 'print one JSON object (every checkpoint and the best) instead of text' },
      device: { type: 'string', default: 'cpu', choices: DEVICES, help: 'onnxruntime-node execution provider (webgpu: any Vulkan/Metal/D3D12 GPU; cuda: see the README)' },
    },
  },
  async run({ positionals, options: o }) {
    const exp = openExperiment(o.expName)
    const samples = await loadDataset(positionals[0], o.ver, { dataPath: o.dataPath })
    const steps = selectCheckpoints(listCheckpoints(exp.dir), o.firstCkpt, o.lastCkpt)
    if (steps.length === 0) throw new LmpError(`no checkpoint of ${exp.name} in range [${o.firstCkpt}, ${o.lastCkpt}]`)
    const results = await evalDatasetPpl(exp, samples, steps, o.batchSize, o.device as Device)
    const best = results.reduce((a, b) => (b.ppl < a.ppl ? b : a))
    if (o.json) {
      const row = (r: (typeof results)[number]) => ({ checkpoint: r.step, perplexity: r.ppl, nats_per_token: r.natsPerToken, tokens: r.tokens })
      console.log(JSON.stringify({
        object: 'dataset_perplexity',
        model: exp.name,
        dataset: positionals[0],
        split: o.ver ?? DATASETS[positionals[0]].defaultVersion,
        checkpoints: results.map(row),
        best: row(best),
      }))
      return
    }
    for (const r of results) console.log(`checkpoint: ${r.step}, ppl: ${r.ppl}`)
    if (results.length > 1) console.log(`best checkpoint: ${best.step}, best ppl: ${best.ppl}`)
  },
}

export async function evalDatasetPpl(exp: Parameters<typeof stepModelFor>[0], samples: string[], steps: number[], batchSize = 32, device: Device = 'cpu') {
  const { scoreTexts } = await import('../infer/perplexity.ts')
  const results: { step: number; ppl: number; natsPerToken: number; tokens: number }[] = []
  for (const step of steps) {
    const { model } = await stepModelFor(exp, step, device)
    const bar = new ProgressBar(`ckpt ${step}`, samples.length)
    const score = await scoreTexts(model, exp.tokenizer, samples, { batchSize, onProgress: (n) => bar.update(n) })
    bar.done()
    await model.release?.()
    results.push({ step, ppl: score.ppl, natsPerToken: score.natsPerToken, tokens: score.tokens })
  }
  return results
}
