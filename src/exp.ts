// The experiment folder (DESIGN.md "Artifacts"): exp/NAME/{lmp_config.json, lmp_tokenizer.json,
// ckpt-STEP.safetensors, ckpt-STEP.optim.safetensors, metrics.jsonl, onnx/} and Hugging Face's files
// (tokenizer.json; config.json, tokenizer_config.json, generation_config.json once a Transformer is
// exported), so that the folder opens in transformers.js as it is. Node only.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { LmpError } from './errors.ts'
import { writeError, writeFileAtomic } from './io/atomic.ts'
import { saveTokenizer } from './tokenizer/io.ts'
import { hfTokenizerConfig, hfTokenizerJSON } from './tokenizer/hf.ts'
import type { Tokenizer } from './tokenizer/index.ts'

/** Where experiments live: $LMP_EXP_DIR, else ./exp. */
export function expRoot(): string {
  return resolve(process.env.LMP_EXP_DIR || 'exp')
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** The folder of experiment `name`; names cannot climb out of the experiment root. */
export function expDir(name: string): string {
  if (!NAME.test(name) || name.includes('..')) {
    throw new LmpError(`invalid experiment name '${name}': use letters, digits, '.', '_' and '-'`)
  }
  return join(expRoot(), name)
}

/** lmp's own files in an experiment folder, named so that they never collide with Hugging Face's. */
export const LMP_CONFIG = 'lmp_config.json' // every option of the run (or of `lmp train-tknzr`)
export const LMP_TOKENIZER = 'lmp_tokenizer.json' // the tokenizer in lmp's format (src/tokenizer/io.ts)

/** Hugging Face's files in an experiment folder (the names transformers' from_pretrained looks for). */
export const HF_CONFIG = 'config.json'
export const HF_TOKENIZER = 'tokenizer.json'
export const HF_TOKENIZER_CONFIG = 'tokenizer_config.json'
export const HF_GENERATION_CONFIG = 'generation_config.json'

// Before Hugging Face's files were written, lmp's own went by their names. Told apart by content: a Hugging
// Face config.json has `model_type`, lmp's never did; lmp's tokenizer JSON has `tknzr_name`, Hugging
// Face's never does. An unreadable config.json counts as lmp's, so that reading it says what is wrong.
const legacyConfig = (dir: string) => existsSync(join(dir, HF_CONFIG)) && !('model_type' in (readJsonOr(join(dir, HF_CONFIG)) ?? {}))
const legacyTokenizer = (dir: string) => typeof readJsonOr(join(dir, HF_TOKENIZER))?.tknzr_name === 'string'

/**
 * Where lmp's run options and tokenizer are in experiment folder `dir`: lmp_config.json and
 * lmp_tokenizer.json, or in a folder written before they were renamed, config.json and tokenizer.json in
 * lmp's format. A file that is in neither place is given under its new name (reading it then fails with
 * that name). The one place that decides these paths.
 */
export function lmpFiles(dir: string): { config: string; tokenizer: string } {
  const config = join(dir, LMP_CONFIG)
  const tokenizer = join(dir, LMP_TOKENIZER)
  return {
    config: !existsSync(config) && legacyConfig(dir) ? join(dir, HF_CONFIG) : config,
    tokenizer: !existsSync(tokenizer) && legacyTokenizer(dir) ? join(dir, HF_TOKENIZER) : tokenizer,
  }
}

/**
 * Renames an old folder's config.json and tokenizer.json (lmp's formats) to lmp_config.json and
 * lmp_tokenizer.json, so that writing Hugging Face's files there never overwrites them. Writers call it
 * under the folder's lock before they write; readers need not (lmpFiles finds either).
 */
export function upgradeLayout(dir: string): void {
  const rename = (from: string, to: string) => {
    try {
      renameSync(join(dir, from), join(dir, to))
    } catch (e) {
      throw writeError(join(dir, to), e)
    }
  }
  if (!existsSync(join(dir, LMP_CONFIG)) && legacyConfig(dir)) rename(HF_CONFIG, LMP_CONFIG)
  if (!existsSync(join(dir, LMP_TOKENIZER)) && legacyTokenizer(dir)) rename(HF_TOKENIZER, LMP_TOKENIZER)
}

/**
 * Writes experiment folder `dir`'s tokenizer: lmp_tokenizer.json (lmp's format), then tokenizer.json
 * (Hugging Face's), each atomically. Throws a WriteError naming the file that failed.
 */
export async function saveTokenizerFiles(dir: string, tk: Tokenizer): Promise<void> {
  const path = join(dir, LMP_TOKENIZER)
  try {
    saveTokenizer(path, tk)
  } catch (e) {
    throw writeError(path, e)
  }
  await saveHfTokenizer(dir, tk)
}

/**
 * Writes `dir`/tokenizer.json and tokenizer_config.json: `tk` in Hugging Face's formats (src/tokenizer/hf.ts),
 * each atomically. Readers need both: without the config, transformers.js loads no tokenizer and
 * @huggingface/tokenizers reads unknown tokens as null. `modelMaxLength`: the model's context, once known.
 * padding_side 'left': a batch of prompts then ends each row at its last token, where generation goes on
 * (transformers pads on the right unless told; our graph takes left padding through attention_mask). A
 * chat_template already in tokenizer_config.json (one a user added for lmp serve) is kept.
 */
export async function saveHfTokenizer(dir: string, tk: Tokenizer, modelMaxLength?: number): Promise<void> {
  await writeFileAtomic(join(dir, HF_TOKENIZER), JSON.stringify(hfTokenizerJSON(tk)) + '\n')
  const template = readJsonOr(join(dir, HF_TOKENIZER_CONFIG))?.chat_template
  const config = { ...hfTokenizerConfig(tk, modelMaxLength), padding_side: 'left', ...(template === undefined ? {} : { chat_template: template }) }
  await writeFileAtomic(join(dir, HF_TOKENIZER_CONFIG), JSON.stringify(config, null, 2) + '\n')
}

/** Whether `dir` holds a tokenizer (lmp's, under either name). */
export function hasTokenizer(dir: string): boolean {
  return existsSync(lmpFiles(dir).tokenizer)
}

/** An existing experiment's folder, or a one-line error naming the ones there are. */
export function existingExpDir(name: string): string {
  const dir = expDir(name)
  const config = lmpFiles(dir).config
  if (!existsSync(config)) {
    const known = existsSync(expRoot()) ? readdirSync(expRoot()).filter((d) => existsSync(lmpFiles(join(expRoot(), d)).config)) : []
    throw new LmpError(`unknown experiment '${name}' (no ${config})${known.length ? `; experiments: ${known.join(', ')}` : ''}`)
  }
  return dir
}

export function readJson(path: string, what: string): any {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new LmpError(`missing ${what}: ${path}`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new LmpError(`corrupt ${what} (not JSON): ${path}`)
  }
}

/** Checkpoint steps present in an experiment folder, ascending. */
export function listCheckpoints(dir: string): number[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .map((f) => /^ckpt-(\d+)\.safetensors$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b)
}

/** lmp's checkpoint ranges: first -1 = only the latest; last -1 = up to the latest. */
export function selectCheckpoints(all: number[], first: number, last: number): number[] {
  if (all.length === 0) return []
  const max = all[all.length - 1]
  if (first === -1) return [max]
  const hi = last === -1 ? max : last
  return all.filter((c) => c >= first && c <= hi)
}

export function checkpointPath(dir: string, step: number): string {
  return join(dir, `ckpt-${step}.safetensors`)
}

/** The step of checkpoint `ckpt` (-1 = latest), or a one-line error. */
export function resolveCheckpoint(dir: string, ckpt: number): number {
  const all = listCheckpoints(dir)
  if (all.length === 0) throw new LmpError(`no checkpoint in ${dir}: train the model first`)
  if (ckpt === -1) return all[all.length - 1]
  if (!all.includes(ckpt)) throw new LmpError(`missing checkpoint ${ckpt} in ${dir}; there are: ${all.join(', ')}`)
  return ckpt
}

// What a training run and its export write in the folder: lmp's files, and the Hugging Face files that
// describe the model (the tokenizer's three files aside: `lmp train-tknzr` writes those alone). config.json is
// Hugging Face's, or lmp's run options in an old folder.
const RUN_FILE = /^ckpt-\d+\.(optim\.)?safetensors$|^metrics\.jsonl$|^(lmp_)?config\.json$|^best\.json$|^onnx$|^generation_config\.json$/

/** The files and folders of a training run in `dir` (none when it does not exist), sorted. */
export function runFiles(dir: string): string[] {
  if (!existsSync(dir)) return []
  // `lmp train-tknzr` writes lmp's config too: with a tokenizer, it is not a run.
  const tokenizerOnly = (f: string) => (f === LMP_CONFIG || f === HF_CONFIG) && readJsonOr(join(dir, f))?.command === 'train-tknzr'
  return readdirSync(dir).filter((f) => RUN_FILE.test(f) && !tokenizerOnly(f)).sort()
}

/** A JSON object's content, or undefined when the file is missing, not JSON or not an object. */
function readJsonOr(path: string): Record<string, unknown> | undefined {
  try {
    const json = JSON.parse(readFileSync(path, 'utf8'))
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? json : undefined
  } catch {
    return undefined
  }
}

/**
 * Refuses (one line) to start a new run in a folder that holds one, unless `overwrite`: a re-run must never
 * delete a trained experiment by accident. A folder with only a tokenizer (`lmp train-tknzr`) is refused too,
 * unless that tokenizer is the one the run uses (`keepsTokenizer`).
 */
export function refuseToReplace(dir: string, name: string, opts: { overwrite: boolean; keepsTokenizer: boolean; resumable?: boolean }): void {
  if (opts.overwrite) return
  const found = runFiles(dir)
  if (found.length === 0 && (opts.keepsTokenizer || !hasTokenizer(dir))) return
  const what = found.length ? `${found.length} file${found.length === 1 ? '' : 's'} of a run (${found.slice(0, 3).join(', ')}${found.length > 3 ? ', ...' : ''})` : 'a tokenizer'
  const hint = opts.resumable === false ? 'use another --exp-name, or --overwrite to delete it and start over' : 'use --resume to continue it, or --overwrite to delete it and start over'
  throw new LmpError(`experiment '${name}' already exists (${dir} holds ${what}): ${hint}`, 409)
}

/**
 * Deletes the run in `dir` (checkpoints, metrics, lmp's config, best.json, onnx/, Hugging Face's model files),
 * leaving anything else; `--overwrite`.
 */
export function clearRun(dir: string): void {
  for (const f of runFiles(dir)) rmSync(join(dir, f), { recursive: true, force: true })
}
