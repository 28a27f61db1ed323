// The course's project at test size: a GPT-2-layout checkpoint (test/helpers/gpt2-fixture.ts) fine-tuned on
// Tiny Shakespeare with `lmp train-model Transformer --init-from` for 30 steps, exported. Shared by the
// init-from test and the tests that open the result elsewhere (transformers.js, the page).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { lmpInProcess } from './cli-in-process.ts'
import { writeGpt2Folder } from './gpt2-fixture.ts'

export const SHAKESPEARE = fileURLToPath(new URL('../../../shared/data/tinyshakespeare/input.txt', import.meta.url))
export const FINE_TUNE_STEPS = 30

/**
 * Tiny Shakespeare as a `text` dataset folder, one speech (a blank-line-separated block, its lines joined) per
 * line, as the tiny-shakespeare dataset's samples are: train = the speeches in its first 40,000 characters,
 * valid = test = those in 2,000 characters of its last tenth (never trained on). Small, so that scoring with
 * GPT-2's 50,259-entry head stays quick.
 */
export function shakespeareFolder(dir: string): string {
  const text = readFileSync(SHAKESPEARE, 'utf8')
  mkdirSync(dir, { recursive: true })
  const speeches = (s: string) => s.split(/\n\s*\n/).slice(1, -1).map((b) => b.replace(/\s+/g, ' ').trim()).join('\n') + '\n'
  writeFileSync(join(dir, 'train.txt'), speeches(text.slice(0, 40_000)))
  const held = speeches(text.slice(1_004_000, 1_006_000))
  writeFileSync(join(dir, 'valid.txt'), held)
  writeFileSync(join(dir, 'test.txt'), held)
  return dir
}

/** The options of the fine-tuning run, after --init-from and --exp-name. */
export const FINE_TUNE_ARGS = [
  '--dset-name', 'text', '--max-seq-len', '32', '--batch-size', '4', '--total-step', String(FINE_TUNE_STEPS),
  '--warmup-step', '3', '--lr', '3e-3', '--lr-schedule', 'cosine', '--ckpt-step', String(FINE_TUNE_STEPS), '--log-step', '10',
]

/**
 * Writes the GPT-2-layout folder (`root`/gpt2, GPT2LMHeadModel's `transformer.` names, vocab.json + merges.txt)
 * and fine-tunes it into experiment `name` under `root`/exp (exported to ONNX at the end). Sets LMP_EXP_DIR.
 * Returns the experiment's folder and the data folder; throws with lmp's stderr when a command fails.
 */
export async function fineTunedGpt2(root: string, name = 'gpt2-ft'): Promise<{ expRoot: string; expName: string; dir: string; data: string; pretrained: string }> {
  const pretrained = join(root, 'gpt2')
  writeGpt2Folder(pretrained, { prefixed: true })
  const data = shakespeareFolder(join(root, 'data'))
  const expRoot = join(root, 'exp')
  process.env.LMP_EXP_DIR = expRoot
  const r = await lmpInProcess(['train-model', 'Transformer', '--init-from', pretrained, '--exp-name', name, '--data-path', data, ...FINE_TUNE_ARGS])
  if (r.status !== 0) throw new Error(`lmp train-model --init-from failed: ${r.stderr}`)
  return { expRoot, expName: name, dir: join(expRoot, name), data, pretrained }
}
