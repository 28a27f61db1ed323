// `lmp train-model <model>`: train a language model with TF.js and export it to ONNX.
import { join, resolve } from 'node:path'
import type { Command } from './index.ts'
import type { OptionSpec } from './args.ts'
import { LmpError } from '../errors.ts'
import { checkpointPath, clearRun, expDir, existingExpDir, hasTokenizer, lmpFiles, LMP_CONFIG, readJson, refuseToReplace, saveTokenizerFiles, upgradeLayout } from '../exp.ts'
import { removeTempFiles, writeFileAtomic, WriteError } from '../io/atomic.ts'
import { withFolderLock } from '../io/lock.ts'
import { DATASETS, loadDataset, loadRawText } from '../data/index.ts'
import { createTokenizer, TOKENIZER_NAMES, type Tokenizer } from '../tokenizer/index.ts'
import { loadTokenizer } from '../tokenizer/io.ts'
import { MODEL_OPTIONS, MODELS, modelConfigFromOptions } from './model-options.ts'
import { INIT_FROM_OPTION, prepareInitFrom } from './init-from.ts'

export { MODEL_OPTIONS }

export const TASKS = ['lmp', 'nanogpt']

export const TRAIN_OPTIONS: Record<string, OptionSpec> = {
  'exp-name': { type: 'string', default: 'my_model_exp', help: 'experiment name (folder exp/NAME)' },
  'dset-name': { type: 'string', default: 'demo', choices: Object.keys(DATASETS), help: 'dataset' },
  task: { type: 'string', default: 'lmp', choices: TASKS, help: "lmp: the dataset's normalized samples as windows; nanogpt: nanoGPT's character task (the split's raw text as one stream, newlines kept, random windows, --eval-iters estimate beside a full pass)" },
  ver: { type: 'string', help: "dataset version (split) to train on (default: the dataset's train split)" },
  'data-path': { type: 'string', help: 'a local copy of the dataset (file or folder), for offline machines' },
  'tknzr-exp-name': { type: 'string', help: 'use the tokenizer of this experiment (lmp train-tknzr) instead of training one' },
  tknzr: { type: 'string', default: 'character', choices: TOKENIZER_NAMES, help: 'tokenizer to train on the training split' },
  'is-uncased': { type: 'boolean', default: false, help: 'lowercase text (tokenizer option)' },
  'max-vocab': { type: 'int', default: -1, min: -1, help: 'vocabulary cap incl. the 4 special tokens (-1: none)' },
  'min-count': { type: 'int', default: 0, min: 0, help: 'drop tokens seen fewer times' },
  'batch-size': { type: 'int', default: 32, min: 1, help: 'windows per step' },
  lr: { type: 'float', default: 1e-3, min: 0, help: 'peak learning rate (AdamW)' },
  beta1: { type: 'float', default: 0.9, min: 0, max: 1, help: 'AdamW beta1' },
  beta2: { type: 'float', default: 0.999, min: 0, max: 1, help: 'AdamW beta2' },
  eps: { type: 'float', default: 1e-8, min: 0, help: 'AdamW epsilon' },
  'weight-decay': { type: 'float', default: 0, min: 0, help: 'decoupled weight decay (not on biases and LayerNorm gains)' },
  'max-norm': { type: 'float', default: 10, min: 0, help: 'clip gradients to this global L2 norm (0: off)' },
  'max-seq-len': { type: 'int', default: 32, min: 1, help: 'context window length' },
  stride: { type: 'int', min: 1, help: 'step between window starts (<= max_seq_len; default: max_seq_len; not used with --tbptt or --task nanogpt)' },
  tbptt: { type: 'boolean', default: false, help: 'truncated BPTT (recurrent models): batch rows are contiguous streams of the text, the state carried from step to step' },
  'total-step': { type: 'int', default: 10000, min: 1, help: 'optimizer steps' },
  'warmup-step': { type: 'int', min: 1, help: 'linear warmup steps, then the --lr-schedule decay (default: a tenth of --total-step)' },
  'lr-schedule': { type: 'string', default: 'linear', choices: ['linear', 'cosine'], help: 'decay after warmup, down to --min-lr at --total-step' },
  'min-lr': { type: 'float', default: 0, min: 0, help: 'learning rate at the end of the decay' },
  'ckpt-step': { type: 'int', default: 1000, min: 1, help: 'save a checkpoint every N steps (and at the end)' },
  'log-step': { type: 'int', default: 100, min: 1, help: 'write the mean loss to metrics.jsonl every N steps' },
  'eval-step': { type: 'int', default: 0, min: 0, help: 'validation perplexity every N steps and at the end, into metrics.jsonl; the best checkpoint is named in best.json (0: off)' },
  'eval-ver': { type: 'string', default: 'valid', help: 'dataset version (split) that --eval-step scores' },
  'eval-iters': { type: 'int', default: 200, min: 1, help: "--task nanogpt: batches of random windows in the validation estimate (nanoGPT's eval_iters)" },
  seed: { type: 'int', default: 42, help: 'random seed (init, data order, dropout)' },
  resume: { type: 'boolean', default: false, help: "continue exp/NAME from its last checkpoint, with the options of its lmp_config.json (the same losses as a run never stopped); options given again must keep their saved values, only --backend, --threads, --data-path and --export/--no-export may change" },
  overwrite: { type: 'boolean', default: false, help: 'delete the run already in exp/NAME (checkpoints, metrics, config, best.json, onnx/) and start over; without it an existing experiment is refused' },
  backend: { type: 'string', default: 'auto', choices: ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'], help: 'TF.js backend (auto: tensorflow, then webgpu on a real GPU, then wasm, then cpu)' },
  threads: { type: 'int', min: 1, max: 8, help: 'threads of the wasm backend (default: one per CPU core, at most 8; 1 on a machine busy with other work); any number trains the same weights' },
  export: { type: 'boolean', default: true, help: 'export the final model to exp/NAME/onnx (--no-export to skip)' },
}

/**
 * Options that default to a function of others, so that the defaults hold at any --total-step and
 * --max-seq-len: warmup a tenth of the steps (1,000 of the default 10,000), stride the window length.
 */
export function withDerivedDefaults(o: Record<string, any>): Record<string, any> {
  return { ...o, warmupStep: o.warmupStep ?? Math.max(1, Math.round(o.totalStep / 10)), stride: o.stride ?? o.maxSeqLen }
}

/** One split as the task reads it: lmp's samples, or (nanogpt) the raw text as a single sample. */
async function loadSplit(task: string, name: string, ver: string | undefined, dataPath: string | undefined): Promise<string[]> {
  return task === 'nanogpt' ? [await loadRawText(name, ver, { dataPath })] : loadDataset(name, ver, { dataPath })
}

export const command: Command = {
  spec: {
    name: 'train-model',
    summary: 'Train a language model with TF.js, checkpoint it, and export it to ONNX.',
    positionals: [{ name: 'model', help: 'architecture', choices: MODELS }],
    options: { ...TRAIN_OPTIONS, ...INIT_FROM_OPTION, ...MODEL_OPTIONS },
  },
  async run(args) {
    await trainModel(args.positionals[0], args.options, args.given)
  },
}

async function getTokenizer(o: Record<string, any>, samples: string[]): Promise<Tokenizer> {
  if (o.task === 'nanogpt') {
    if (o.tknzrExpName || o.tknzr !== 'character' || o.isUncased || o.maxVocab !== -1 || o.minCount !== 0) {
      throw new LmpError('--task nanogpt has its own vocabulary (the raw characters of the training text): drop --tknzr, --tknzr-exp-name, --is-uncased, --max-vocab and --min-count')
    }
    const tk = createTokenizer('character', { isRaw: true } as object)
    tk.buildVocab(samples)
    return tk
  }
  if (o.tknzrExpName) return loadTokenizer(lmpFiles(existingTokenizerDir(o.tknzrExpName)).tokenizer)
  if (o.tknzr === 'gpt2') {
    const { loadGpt2 } = await import('../tokenizer/gpt2.ts' as string)
    await loadGpt2()
  }
  const tk = createTokenizer(o.tknzr, { isUncased: o.isUncased, maxVocab: o.maxVocab, minCount: o.minCount })
  tk.buildVocab(samples)
  return tk
}

function existingTokenizerDir(name: string): string {
  const dir = expDir(name)
  if (!hasTokenizer(dir)) throw new LmpError(`unknown tokenizer experiment '${name}' (no ${lmpFiles(dir).tokenizer})`)
  return dir
}

/**
 * Train (and export) as `lmp train-model` does; `lmp demo` calls this with its own defaults. `given`: the
 * options the command line gave (--init-from refuses those that contradict the pretrained model).
 */
export async function trainModel(modelName: string, o: Record<string, any>, given: ReadonlySet<string> = new Set()) {
  if (o.resume && o.overwrite) throw new LmpError('--resume continues an experiment and --overwrite deletes it: give one of them')
  if (o.resume && o.initFrom) throw new LmpError('--resume continues from the experiment\'s own checkpoints: drop --init-from')
  if (o.threads !== undefined && !['auto', 'wasm'].includes(o.backend)) throw new LmpError(`--threads is for the wasm backend, not --backend ${o.backend}`)
  if (o.resume) return resumeModel(modelName, o, given)
  o = withDerivedDefaults(o)
  const pretrained = o.initFrom ? await prepareInitFrom(modelName, o, given) : null
  if (pretrained) o = pretrained.options
  const dir = expDir(o.expName)
  const replace = { overwrite: Boolean(o.overwrite), keepsTokenizer: o.tknzrExpName === o.expName }
  refuseToReplace(dir, o.expName, replace)
  const samples = await loadSplit(o.task, o.dsetName, o.ver, o.dataPath)
  if (!samples.some((x) => x.length > 0)) throw new LmpError(`dataset '${o.dsetName}' has no text to train on${o.dataPath ? ` (${o.dataPath})` : ''}`)
  const validSamples = o.evalStep > 0 ? await loadSplit(o.task, o.dsetName, o.evalVer, o.dataPath) : undefined
  const tokenizer = await getTokenizer(o, samples)
  const modelConfig = { ...modelConfigFromOptions(modelName, tokenizer.vocabSize, o), ...pretrained?.arch }
  const trainConfig = {
    batchSize: o.batchSize, lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay,
    maxNorm: o.maxNorm, maxSeqLen: o.maxSeqLen, stride: o.stride, totalStep: o.totalStep, warmupStep: o.warmupStep,
    ckptStep: o.ckptStep, logStep: o.logStep, seed: o.seed,
    tbptt: o.tbptt, lrSchedule: o.lrSchedule, minLr: o.minLr, evalStep: o.evalStep,
    ...(o.task === 'nanogpt' ? { randomWindows: true, evalIters: o.evalIters } : {}),
  }
  // Validate everything before touching the experiment folder or loading TF.js.
  const { createModel } = await import('../../models/lm.ts')
  const { validateTrainConfig } = await import('../../models/train.ts')
  const model = createModel(modelConfig as any)
  validateTrainConfig(trainConfig)
  if (o.tbptt && model.kind !== 'recurrent') throw new LmpError(`--tbptt is for recurrent models, not ${modelName}`)
  const init = pretrained ? await pretrained.weights(tokenizer) : undefined

  const { backend, describeBackend } = await startBackend(o)
  const config = {
    model: modelConfig,
    train: trainConfig,
    // An absolute data path, so that --resume finds the data from any folder.
    data: { dsetName: o.dsetName, ver: o.ver ?? null, dataPath: o.dataPath ? resolve(o.dataPath) : null, evalVer: o.evalVer },
    tokenizer: o.tknzrExpName ? { fromExperiment: o.tknzrExpName } : { name: o.tknzr, isUncased: o.isUncased, maxVocab: o.maxVocab, minCount: o.minCount },
    backend,
    export: o.export, // what --resume does at the end unless told (--export / --no-export)
    ...(pretrained ? { initFrom: pretrained.dir } : {}),
  }
  return withFolderLock(dir, 'lmp train-model', async () => {
    // Again under the lock: another run may have started here since the check above.
    refuseToReplace(dir, o.expName, replace)
    upgradeLayout(dir) // a folder of the old layout: its lmp files renamed before Hugging Face's are written
    // With --overwrite, the old run goes: its checkpoints would otherwise pass for this run's.
    clearRun(dir)
    await saveTokenizerFiles(dir, tokenizer)
    await writeFileAtomic(join(dir, LMP_CONFIG), JSON.stringify(config, null, 2) + '\n')
    if (init) {
      // The pretrained starting point as checkpoint 0: `eval-dset-ppl --ckpt 0` scores the model before fine-tuning.
      const { writeSafetensors } = await import('../../models/safetensors.ts')
      const start = toWeights(model, init)
      await writeSafetensors(checkpointPath(dir, 0), Object.fromEntries(Object.entries(start).map(([n, t]) => [n, { dtype: 'F32' as const, ...t }])), { step: '0', format: 'pt' })
    }
    const what = o.task === 'nanogpt' ? `${samples[0].length} characters as one stream` : `${samples.length} samples`
    console.error(`training ${modelName} on ${o.dsetName} (${what}, vocabulary ${tokenizer.vocabSize}) with TF.js backend '${describeBackend(backend)}' → ${dir}`)
    return runTraining({ dir, name: o.expName, modelConfig, trainConfig, tokenizer, samples, validSamples, backend, exportModel: o.export, resume: false, init })
  })
}

/** The TF.js backend of --backend, on --threads for wasm. */
async function startBackend(o: Record<string, any>) {
  const { initBackend, describeBackend } = await import('../../models/backend.ts')
  return { backend: await initBackend(o.backend, { numThreads: o.threads }), describeBackend }
}

/** `--resume`: everything but --backend, --threads, --data-path and --export comes from the experiment's lmp_config.json. */
async function resumeModel(modelName: string, o: Record<string, any>, given: ReadonlySet<string>) {
  const dir = existingExpDir(o.expName)
  const configPath = lmpFiles(dir).config
  const config = readJson(configPath, 'experiment config')
  if (!config?.model?.model || !config?.train || !config?.data) throw new LmpError(`${configPath} is not a model experiment`)
  const { createModel } = await import('../../models/lm.ts')
  // Compared as built, so that lmp's alias (Transformer-encoder) names the same model.
  const trained = createModel(config.model).config.model
  if (createModel({ ...config.model, model: modelName }).config.model !== trained) {
    throw new LmpError(`experiment '${o.expName}' trains ${config.model.model}, not ${modelName}`)
  }
  // An option given again must keep its saved value: any other would be ignored (the run continues as saved;
  // a longer --total-step, say, would also reshape the learning-rate schedule already half followed).
  const saved: Record<string, unknown> = { ...config.data, ...config.tokenizer, ...config.model, ...config.train }
  const changed = [...given].filter((k) => k in saved && !['dataPath', 'model', 'name'].includes(k) && o[k] !== saved[k])
  if (changed.length) {
    const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
    throw new LmpError(`--resume continues with the options saved in ${configPath}, and ${changed.map((k) => `--${kebab(k)} ${o[k]} is not the saved ${saved[k] ?? '(none)'}`).join(', ')}: drop ${changed.length > 1 ? 'them' : 'it'}, or train a new experiment`)
  }
  // Held from here on: a second writer must not even read a checkpoint this run is about to replace.
  // --export / --no-export given now wins; else the first run's choice (runs before 0.2 saved none: export).
  const exportModel = given.has('export') ? o.export : config.export ?? true
  return withFolderLock(dir, 'lmp train-model --resume', () => resumeLocked(dir, config, { ...o, export: exportModel }))
}

async function resumeLocked(dir: string, config: any, o: Record<string, any>) {
  upgradeLayout(dir)
  const tokenizer = loadTokenizer(lmpFiles(dir).tokenizer)
  const data = config.data
  const dataPath = o.dataPath ?? data.dataPath ?? undefined
  const task = config.train.randomWindows ? 'nanogpt' : 'lmp'
  const samples = await loadSplit(task, data.dsetName, data.ver ?? undefined, dataPath)
  const validSamples = config.train.evalStep > 0 ? await loadSplit(task, data.dsetName, data.evalVer ?? 'valid', dataPath) : undefined
  const { resumableSteps } = await import('../../models/train.ts')
  const steps = resumableSteps(dir)
  if (steps.length === 0) {
    throw new LmpError(`nothing to resume in ${dir}: the run stopped before its first checkpoint (--ckpt-step ${config.train.ckptStep}); start it again with --overwrite`)
  }
  const last = steps[steps.length - 1]
  if (last >= config.train.totalStep) throw new LmpError(`${dir} is already trained to step ${last} (total_step ${config.train.totalStep}); nothing to resume`)
  const { backend, describeBackend } = await startBackend(o)
  console.error(`resuming ${config.model.model} from step ${last} of ${config.train.totalStep} with TF.js backend '${describeBackend(backend)}' → ${dir}`)
  return runTraining({ dir, name: o.expName, modelConfig: config.model, trainConfig: config.train, tokenizer, samples, validSamples, backend, exportModel: o.export, resume: true })
}

async function runTraining(r: {
  dir: string; name: string; modelConfig: any; trainConfig: any; tokenizer: Tokenizer; samples: string[]
  validSamples?: string[]; backend: string; exportModel: boolean; resume: boolean; init?: Record<string, Float32Array>
}) {
  const { train } = await import('../../models/train.ts')
  const { dir, tokenizer, backend } = r
  // What killed writers left; nobody else writes here (the caller holds the folder's lock).
  removeTempFiles(dir)
  removeTempFiles(join(dir, 'onnx'))
  const result = await train({ dir, modelConfig: r.modelConfig, trainConfig: r.trainConfig, tokenizer, samples: r.samples, validSamples: r.validSamples, resume: r.resume, init: r.init })
    .catch(async (e) => { throw backend.startsWith('wasm') && WASM_OUT_OF_MEMORY.test(String(e?.message)) ? await wasmOutOfMemory(r.name, dir) : e })
  const from = result.startStep > 0 ? ` (from step ${result.startStep})` : ''
  console.log(`trained ${result.steps} steps${from}: loss ${result.finalLoss.toFixed(4)}, ${Math.round(result.tokensPerSec)} tokens/s (${backend})`)
  if (result.best) console.log(`best checkpoint: ${result.best.step}, valid ppl ${result.best.valPpl.toFixed(4)} (best.json)`)
  if (r.exportModel) {
    const { exportToDir } = await import('../../onnx/export.ts')
    const { dir: onnxDir } = await exportToDir(result.model, toWeights(result.model, result.weights), existingExpDir(r.name), result.steps, { tokenizer }).catch((e) => {
      if (!(e instanceof WriteError)) throw e
      throw new LmpError(`${e.message}; training is done and checkpoint ${result.steps} is complete: run lmp export-onnx --exp-name ${r.name} when there is room`, e.status)
    })
    console.log(`exported ONNX to ${onnxDir}`)
  }
  return { dir, result, tokenizer, backend }
}

// How TF.js's wasm backend fails when its heap (32-bit: 4 GB at most) is full: an Emscripten abort, or a
// kernel that writes past the memory it could not grow.
const WASM_OUT_OF_MEMORY = /memory access out of bounds|Aborted\(|out of memory|Cannot enlarge memory|WebAssembly\.Memory/i

async function wasmOutOfMemory(name: string, dir: string): Promise<LmpError> {
  const { resumableSteps } = await import('../../models/train.ts')
  const saved = resumableSteps(dir)
  const next = saved.length ? `--resume continues from checkpoint ${saved[saved.length - 1]} (with --backend webgpu, say)` : 'start again with --overwrite'
  return new LmpError(`the TF.js wasm backend ran out of memory (its heap holds 4 GB at most, and training needs the weights, their gradients and AdamW's two moments, 4× the parameters, plus the activations): use a smaller model, --batch-size or --max-seq-len, or --backend webgpu; ${next} (experiment '${name}')`)
}

export function toWeights(model: { params(): Record<string, { shape: number[] }> }, data: Record<string, Float32Array>) {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {}
  for (const [name, spec] of Object.entries(model.params())) out[name] = { shape: spec.shape, data: data[name] }
  return out
}
