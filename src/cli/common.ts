// What several commands share: rebuilding a model from an experiment's checkpoint, and turning it into
// an onnxruntime-node StepModel (the same bytes `lmp export-onnx` writes, built in memory).
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { LmpError } from '../errors.ts'
import { checkpointPath, existingExpDir, lmpFiles, readJson, resolveCheckpoint } from '../exp.ts'
import { loadTokenizer } from '../tokenizer/io.ts'
import type { Tokenizer } from '../tokenizer/index.ts'
import type { StepModel } from '../infer/types.ts'
import { checkDevice, executionProvidersFor, type Device } from '../infer/device.ts'

export interface Experiment {
  name: string
  dir: string
  config: any
  tokenizer: Tokenizer
}

export function openExperiment(name: string): Experiment {
  const dir = existingExpDir(name)
  const files = lmpFiles(dir)
  const config = readJson(files.config, 'experiment config')
  if (!config?.model?.model) throw new LmpError(`${files.config} is not a model experiment (no model options)`)
  const tokenizer = loadTokenizer(files.tokenizer)
  return { name, dir, config, tokenizer }
}

/** The model and its weights at checkpoint `ckpt` (-1 = latest), checked against the model's parameters. */
export async function loadCheckpoint(exp: Experiment, ckpt: number) {
  const { createModel } = await import('../../models/lm.ts')
  const { readSafetensors } = await import('../../models/safetensors.ts')
  const step = resolveCheckpoint(exp.dir, ckpt)
  const path = checkpointPath(exp.dir, step)
  const model = createModel(exp.config.model)
  const { tensors } = await readSafetensors(path)
  const weights: Record<string, { shape: number[]; data: Float32Array }> = {}
  for (const [name, spec] of Object.entries(model.params())) {
    const t = tensors[name]
    if (!t) throw new LmpError(`corrupt checkpoint ${path}: missing weight '${name}'`)
    if (t.dtype !== 'F32' || t.shape.join('x') !== spec.shape.join('x')) {
      throw new LmpError(`corrupt checkpoint ${path}: '${name}' is ${t.dtype} ${t.shape.join('x')}, expected F32 ${spec.shape.join('x')}`)
    }
    weights[name] = { shape: t.shape, data: t.data as Float32Array }
  }
  return { model, weights, step }
}

/** An onnxruntime-node StepModel for checkpoint `ckpt`, exported in memory, on `device` (--device). */
export async function stepModelFor(exp: Experiment, ckpt: number, device: Device = 'cpu'): Promise<{ model: StepModel; step: number }> {
  const { model, weights, step } = await loadCheckpoint(exp, ckpt)
  const { serialize } = await import('../../onnx/export.ts')
  const { loadOrtModel } = await import('../infer/ort-model.ts')
  const ort = await import('onnxruntime-node')
  const { bytes, manifest } = serialize(model, weights, undefined, { tokenizer: exp.tokenizer })
  await checkDevice(device)
  try {
    return { model: await loadOrtModel(ort as any, bytes, manifest, { executionProviders: executionProvidersFor(device) }), step }
  } catch (err) {
    throw new LmpError(`--device ${device}: cannot load checkpoint ${step} on onnxruntime-node's ${device} execution provider (${String((err as Error).message).split('\n')[0]})`)
  }
}

/**
 * The model to score or generate with: the exported graph when it was exported from that checkpoint
 * (what a server would run), else the checkpoint exported in memory.
 */
export async function servingModel(exp: Experiment, ckpt: number, device: Device = 'cpu'): Promise<{ model: StepModel; step: number; source: string }> {
  const step = resolveCheckpoint(exp.dir, ckpt)
  const manifestPath = join(exp.dir, 'onnx', 'manifest.json')
  if (existsSync(manifestPath) && readJson(manifestPath, 'ONNX manifest')?.config?.checkpoint === step) {
    const { loadExperimentModel } = await import('../../server/models.ts')
    await checkDevice(device)
    const served = await loadExperimentModel(exp.dir, { name: exp.name, executionProviders: executionProvidersFor(device) })
    return { model: served.model, step, source: join(exp.dir, 'onnx', 'model.onnx') }
  }
  const built = await stepModelFor(exp, step, device)
  return { ...built, source: `${checkpointPath(exp.dir, step)} (exported in memory)` }
}
