// The experiment folder (DESIGN.md "Artifacts"): exp/NAME/{config.json, tokenizer.json,
// ckpt-STEP.safetensors, ckpt-STEP.optim.safetensors, metrics.jsonl, onnx/}. Node only.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { LmpError } from './errors.ts'

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

/** An existing experiment's folder, or a one-line error naming the ones there are. */
export function existingExpDir(name: string): string {
  const dir = expDir(name)
  if (!existsSync(join(dir, 'config.json'))) {
    const known = existsSync(expRoot()) ? readdirSync(expRoot()).filter((d) => existsSync(join(expRoot(), d, 'config.json'))) : []
    throw new LmpError(`unknown experiment '${name}' (no ${join(dir, 'config.json')})${known.length ? `; experiments: ${known.join(', ')}` : ''}`)
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

// What a training run writes in its folder (tokenizer.json aside: `lmp train-tknzr` writes that alone).
const RUN_FILE = /^ckpt-\d+\.(optim\.)?safetensors$|^metrics\.jsonl$|^config\.json$|^best\.json$|^onnx$/

/** The files and folders of a training run in `dir` (none when it does not exist), sorted. */
export function runFiles(dir: string): string[] {
  if (!existsSync(dir)) return []
  // `lmp train-tknzr` writes a config.json too: with a tokenizer, it is not a run.
  const tokenizerOnly = (f: string) => f === 'config.json' && readJsonOr(join(dir, f))?.command === 'train-tknzr'
  return readdirSync(dir).filter((f) => RUN_FILE.test(f) && !tokenizerOnly(f)).sort()
}

function readJsonOr(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
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
  if (found.length === 0 && (opts.keepsTokenizer || !existsSync(join(dir, 'tokenizer.json')))) return
  const what = found.length ? `${found.length} file${found.length === 1 ? '' : 's'} of a run (${found.slice(0, 3).join(', ')}${found.length > 3 ? ', ...' : ''})` : 'a tokenizer'
  const hint = opts.resumable === false ? 'use another --exp-name, or --overwrite to delete it and start over' : 'use --resume to continue it, or --overwrite to delete it and start over'
  throw new LmpError(`experiment '${name}' already exists (${dir} holds ${what}): ${hint}`, 409)
}

/** Deletes the run in `dir` (checkpoints, metrics, config, best.json, onnx/), leaving anything else; `--overwrite`. */
export function clearRun(dir: string): void {
  for (const f of runFiles(dir)) rmSync(join(dir, f), { recursive: true, force: true })
}
