// Loading exported experiments (exp/NAME/onnx/{manifest.json, model.onnx, the tokenizer it names}) into
// onnxruntime-node, and the registry of models a server holds, addressed by name.
import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { LmpError } from '../src/errors.ts'
import type { Manifest, StepModel } from '../src/infer/types.ts'
import type { Tokenizer } from '../src/tokenizer/index.ts'
import { loadTokenizerFromJSON } from '../src/tokenizer/gpt2.ts'
import { deviceOf, WEBGPU_NEEDS, type Device } from '../src/infer/device.ts'

export interface ServedModel {
  name: string
  model: StepModel
  tokenizer: Tokenizer
  manifest: Manifest
  /** Absolute paths of the exported files, served to the page under /models/NAME/. */
  files?: { manifest: string; model: string; tokenizer: string; metrics?: string }
  /** Unix seconds when it was loaded (the `created` of /v1/models). */
  created?: number
  /** Where it runs (--device); 'cpu' when not given. */
  device?: Device
}

export interface LoadOptions {
  name?: string
  executionProviders?: string[]
  numThreads?: number
}

/** A model name that can be used in a URL and can never address another folder. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * `--exp NAME` means exp/NAME (under expRoot); anything with a path separator is taken as a folder path.
 * The name a model is served under is the folder's base name.
 */
export function resolveExperimentDir(exp: string, expRoot = 'exp'): { name: string; dir: string } {
  if (exp.includes('/') || exp.includes(path.sep)) {
    const dir = path.resolve(exp)
    return { name: path.basename(dir), dir }
  }
  if (!MODEL_NAME.test(exp)) throw new LmpError(`invalid experiment name '${exp}' (letters, digits, '.', '_' and '-')`)
  return { name: exp, dir: path.resolve(expRoot, exp) }
}

async function readOrFail(file: string, what: string, hint: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new LmpError(`${what} not found: ${file} (${hint})`)
    throw new LmpError(`cannot read ${file}: ${(err as Error).message}`)
  }
}

/**
 * Reads DIR/onnx/manifest.json, model.onnx and the tokenizer the manifest names (lmp_tokenizer.json; older
 * exports: tokenizer.json), checks the checksum, opens the session.
 */
export async function loadExperimentModel(dir: string, opts: LoadOptions = {}): Promise<ServedModel> {
  const name = opts.name ?? path.basename(path.resolve(dir))
  if (!MODEL_NAME.test(name)) throw new LmpError(`invalid model name '${name}' (letters, digits, '.', '_' and '-')`)
  const exists = await stat(dir).then((s) => s.isDirectory(), () => false)
  if (!exists) throw new LmpError(`unknown experiment '${name}': no folder ${dir}`)
  const onnxDir = path.join(dir, 'onnx')
  const hint = `run: lmp export-onnx --exp-name ${name}`
  const manifestPath = path.join(onnxDir, 'manifest.json')
  const manifestText = (await readOrFail(manifestPath, 'exported model', hint)).toString('utf8')
  let manifest: Manifest
  try {
    manifest = JSON.parse(manifestText)
  } catch {
    throw new LmpError(`corrupt manifest: ${manifestPath} is not valid JSON (${hint})`)
  }
  if (manifest?.format !== 'lmp-onnx' || typeof manifest.model !== 'string' || typeof manifest.tokenizer !== 'string') {
    throw new LmpError(`corrupt manifest: ${manifestPath} is not an lmp-onnx manifest (${hint})`)
  }
  // The manifest names its files; they must sit beside it.
  for (const f of [manifest.model, manifest.tokenizer]) {
    if (path.basename(f) !== f) throw new LmpError(`corrupt manifest: file name '${f}' must not contain a path`)
  }
  const files = {
    manifest: manifestPath,
    model: path.join(onnxDir, manifest.model),
    tokenizer: path.join(onnxDir, manifest.tokenizer),
    // The training log of the experiment (may not exist: an experiment copied without it).
    metrics: path.join(dir, 'metrics.jsonl'),
  }
  const modelBytes = await readOrFail(files.model, 'ONNX model', hint)
  const sha256 = createHash('sha256').update(modelBytes).digest('hex')
  if (sha256 !== manifest.sha256) {
    throw new LmpError(`corrupt ONNX model: ${files.model} does not match the sha256 in its manifest (${hint})`)
  }
  let tokenizerJson: unknown
  try {
    tokenizerJson = JSON.parse((await readOrFail(files.tokenizer, 'tokenizer', hint)).toString('utf8'))
  } catch (err) {
    if (err instanceof LmpError) throw err
    throw new LmpError(`corrupt tokenizer: ${files.tokenizer} is not valid JSON`)
  }
  let tokenizer: Tokenizer
  try {
    // A gpt2 tokenizer file names GPT-2's ranks; they are loaded (once) from the npm package.
    tokenizer = await loadTokenizerFromJSON(tokenizerJson)
  } catch (err) {
    throw new LmpError(`cannot load tokenizer ${files.tokenizer}: ${(err as Error).message}`)
  }
  if (tokenizer.vocabSize !== manifest.vocabSize) {
    throw new LmpError(`tokenizer has ${tokenizer.vocabSize} tokens but the model expects ${manifest.vocabSize}: ${files.tokenizer}`)
  }
  const ort = await import('onnxruntime-node')
  const { loadOrtModel, SMALL_MODEL_BYTES } = await import('../src/infer/ort-model.ts')
  const device = deviceOf(opts.executionProviders)
  const cuda = device === 'cuda'
  // onnxruntime prints its own multi-line error when a provider library is missing; we say it in one line.
  if (cuda) ort.env.logLevel = 'fatal'
  let model: StepModel
  try {
    model = await loadOrtModel(ort as never, new Uint8Array(modelBytes.buffer, modelBytes.byteOffset, modelBytes.byteLength), manifest, {
      executionProviders: opts.executionProviders,
      numThreads: opts.numThreads ?? (modelBytes.byteLength < SMALL_MODEL_BYTES ? 1 : undefined),
    })
  } catch (err) {
    if (err instanceof LmpError) throw new LmpError(`cannot load ONNX model ${files.model}: ${err.message}`)
    const reason = String((err as Error).message).split('\n')[0]
    if (cuda) {
      throw new LmpError(`--device cuda: onnxruntime-node's CUDA execution provider cannot load (${reason}); install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 (see the README), or use --device cpu`)
    }
    if (device === 'webgpu') throw new LmpError(`--device webgpu: cannot load ${files.model} on onnxruntime-node's WebGPU execution provider (${reason}); it needs ${WEBGPU_NEEDS}; or use --device cpu`)
    throw new LmpError(`cannot load ONNX model ${files.model}: ${reason}`)
  }
  return { name, model, tokenizer, manifest, files, created: Math.floor(Date.now() / 1000), device }
}

/** The models a server holds. `ready` is false while they load (GET /health answers 503 then). */
export class ModelRegistry {
  ready = false
  private readonly byName = new Map<string, ServedModel>()

  constructor(models: ServedModel[] = [], ready = models.length > 0) {
    for (const m of models) this.add(m)
    this.ready = ready
  }

  add(m: ServedModel): void {
    if (!MODEL_NAME.test(m.name)) throw new LmpError(`invalid model name '${m.name}'`)
    if (this.byName.has(m.name)) throw new LmpError(`two models are named '${m.name}'`)
    this.byName.set(m.name, { created: Math.floor(Date.now() / 1000), ...m })
  }

  /** The named model, or the first one when no name is given; undefined when unknown. */
  get(name?: string | null): ServedModel | undefined {
    if (name === undefined || name === null || name === '') return this.byName.values().next().value
    // Map lookup only: a name like '../x' is simply not a key.
    return this.byName.get(name)
  }

  list(): ServedModel[] {
    return [...this.byName.values()]
  }

  async releaseAll(): Promise<void> {
    for (const m of this.byName.values()) await m.model.release?.()
  }
}
