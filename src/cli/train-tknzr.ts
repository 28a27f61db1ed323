// `lmp train-tknzr <character|whitespace|BPE|gpt2>`: build a tokenizer's vocabulary on a dataset and save
// it as exp/NAME/lmp_tokenizer.json and tokenizer.json (Hugging Face's format), with lmp_config.json, then
// print a summary (lmp's train_tknzr, plus the summary).
import { join } from 'node:path'
import type { Command } from './index.ts'
import { DATASETS, loadDataset } from '../data/index.ts'
import { createTokenizer, type Tokenizer } from '../tokenizer/index.ts'
import { clearRun, expDir, HF_TOKENIZER, LMP_CONFIG, LMP_TOKENIZER, refuseToReplace, saveTokenizerFiles, upgradeLayout } from '../exp.ts'
import { withFolderLock } from '../io/lock.ts'
import { writeFileAtomic } from '../io/atomic.ts'

export const command: Command = {
  spec: {
    name: 'train-tknzr',
    summary: 'Build a tokenizer vocabulary on a dataset and save it to exp/NAME/lmp_tokenizer.json (and tokenizer.json).',
    positionals: [{ name: 'tknzr_name', help: 'tokenizer', choices: ['character', 'whitespace', 'BPE', 'gpt2'] }],
    options: {
      'dset-name': { type: 'string', default: 'demo', choices: Object.keys(DATASETS), help: 'dataset to build the vocabulary on' },
      'exp-name': { type: 'string', default: 'my_tknzr_exp', help: 'experiment name (folder exp/NAME)' },
      seed: { type: 'int', default: 42, help: 'random seed (kept for lmp compatibility; building is deterministic)' },
      ver: { type: 'string', help: "dataset version (default: the dataset's default, e.g. train)" },
      'data-path': { type: 'string', help: 'a local copy of the dataset (file or folder), for offline machines' },
      'sample-by': { type: 'string', default: 'line', choices: ['line', 'block'], help: "dataset 'text': one sample per line or per blank-line-separated block" },
      'max-vocab': { type: 'int', default: -1, min: -1, help: 'vocabulary cap including the 4 special tokens (-1: none)' },
      'min-count': { type: 'int', default: 0, min: 0, help: 'drop tokens (BPE: stop merging at pairs) seen fewer times' },
      'is-uncased': { type: 'boolean', default: false, help: 'lowercase text' },
      'n-merge': { type: 'int', default: 10000, min: 1, help: 'BPE only: number of merges to learn' },
      overwrite: { type: 'boolean', default: false, help: 'replace what exp/NAME holds (a tokenizer, or a trained run, which is deleted); without it an existing experiment is refused' },
    },
  },
  async run({ positionals, options: o }) {
    await trainTokenizer(positionals[0], o)
  },
}

/** Share of tokens that are UNK, and ids per character, of `samples`. */
export function coverage(tk: Tokenizer, samples: string[]): { tokens: number; unk: number; chars: number } {
  let tokens = 0, unk = 0, chars = 0
  for (const s of samples) {
    const ids = tk.enc(s)
    tokens += ids.length - 2
    for (const id of ids) if (id === tk.specialIds.unk) unk++
    chars += tk.norm(s).length
  }
  return { tokens, unk, chars }
}

export async function trainTokenizer(name: string, o: Record<string, any>): Promise<Tokenizer> {
  const dir = expDir(o.expName)
  // A new tokenizer under a trained run would leave its checkpoints unusable: refuse, as train-model does.
  const replace = { overwrite: Boolean(o.overwrite), keepsTokenizer: false, resumable: false }
  refuseToReplace(dir, o.expName, replace)
  const dset = DATASETS[o.dsetName]
  const ver = o.ver ?? dset.defaultVersion
  const loadOpts = { dataPath: o.dataPath, sampleBy: o.sampleBy }
  const samples = await loadDataset(o.dsetName, ver, loadOpts)
  if (name === 'gpt2') await (await import('../tokenizer/gpt2.ts')).loadGpt2()
  const tk = createTokenizer(name, { isUncased: o.isUncased, maxVocab: o.maxVocab, minCount: o.minCount, nMerge: o.nMerge })
  const t0 = performance.now()
  tk.buildVocab(samples)
  const secs = (performance.now() - t0) / 1000
  const config = { command: 'train-tknzr', tknzr_name: name, dset_name: o.dsetName, ver, exp_name: o.expName, seed: o.seed,
    max_vocab: o.maxVocab, min_count: o.minCount, is_uncased: o.isUncased, ...(name === 'BPE' ? { n_merge: o.nMerge } : {}),
    ...(o.dataPath ? { data_path: o.dataPath } : {}) }
  await withFolderLock(dir, 'lmp train-tknzr', async () => {
    refuseToReplace(dir, o.expName, replace) // again under the lock: a run may have started here meanwhile
    upgradeLayout(dir)
    clearRun(dir) // with --overwrite: the old run's checkpoints would not match the new tokenizer
    await saveTokenizerFiles(dir, tk)
    await writeFileAtomic(join(dir, LMP_CONFIG), JSON.stringify(config, null, 2) + '\n')
  })

  console.log(`tokenizer: ${name}, vocabulary size ${tk.vocabSize} (built on ${o.dsetName}/${ver}, ${samples.length} samples, ${secs.toFixed(1)} s)`)
  // Coverage is measured on held-out text where the dataset has it.
  const heldOut = ver !== 'valid' && dset.versions.includes('valid') ? 'valid' : undefined
  const evalSamples = heldOut ? await loadDataset(o.dsetName, heldOut, loadOpts).catch(() => undefined) : undefined
  const c = coverage(tk, evalSamples ?? samples)
  const where = evalSamples ? `${o.dsetName}/${heldOut}` : `${o.dsetName}/${ver} (no valid split)`
  const pct = c.tokens ? ((100 * c.unk) / c.tokens).toFixed(2) : '0.00'
  console.log(`coverage on ${where}: ${c.tokens} tokens, ${c.unk} unknown (${pct}% <unk>), ${(c.tokens / Math.max(1, c.chars)).toFixed(3)} tokens per character`)
  console.log(`saved ${join(dir, LMP_TOKENIZER)} and ${join(dir, HF_TOKENIZER)} (Hugging Face's format)`)
  return tk
}
