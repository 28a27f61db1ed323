// `lmp sample-dset <dset_name>`: print one sample of a dataset (lmp's sample_dset).
import type { Command } from './index.ts'
import { UsageError } from './args.ts'
import { DATASETS, loadDataset } from '../data/index.ts'

export const command: Command = {
  spec: {
    name: 'sample-dset',
    summary: 'Print one sample of a dataset.',
    positionals: [{ name: 'dset_name', help: 'dataset', choices: Object.keys(DATASETS) }],
    options: {
      idx: { type: 'int', default: 0, min: 0, help: 'sample index' },
      seed: { type: 'int', default: 42, help: 'random seed (kept for lmp compatibility; sampling is by index)' },
      ver: { type: 'string', help: "dataset version (default: the dataset's default, e.g. train)" },
      'data-path': { type: 'string', help: 'a local copy of the dataset (file or folder), for offline machines' },
      'sample-by': { type: 'string', default: 'line', choices: ['line', 'block'], help: "dataset 'text': one sample per line or per blank-line-separated block" },
    },
  },
  async run({ positionals, options: o }) {
    const samples = await loadDataset(positionals[0], o.ver, { dataPath: o.dataPath, sampleBy: o.sampleBy })
    if (o.idx >= samples.length) {
      throw new UsageError(`--idx ${o.idx} is out of range: ${positionals[0]} (${o.ver ?? DATASETS[positionals[0]].defaultVersion}) has ${samples.length} samples`)
    }
    console.log(samples[o.idx])
  },
}
