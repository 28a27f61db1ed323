// The page: picks a model, hands it to the inference worker, and streams generated text into the page.
// body[data-state] says where it is (idle, loading, ready, generating, done, error); the browser tests
// wait on it.
import type { GenerateOptions } from '../src/infer/generate.ts'
import type { FromWorker, ToWorker } from './protocol.ts'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const ui = {
  model: $<HTMLSelectElement>('model'),
  load: $<HTMLButtonElement>('load'),
  status: $<HTMLParagraphElement>('status'),
  progress: $<HTMLDivElement>('progress'),
  progressBar: $<HTMLDivElement>('progress-bar'),
  form: $<HTMLFormElement>('generate-form'),
  prompt: $<HTMLTextAreaElement>('prompt'),
  maxTokens: $<HTMLInputElement>('max-tokens'),
  temperature: $<HTMLInputElement>('temperature'),
  topK: $<HTMLInputElement>('top-k'),
  topP: $<HTMLInputElement>('top-p'),
  repetitionPenalty: $<HTMLInputElement>('repetition-penalty'),
  seed: $<HTMLInputElement>('seed'),
  generate: $<HTMLButtonElement>('generate'),
  stop: $<HTMLButtonElement>('stop'),
  stats: $<HTMLSpanElement>('stats'),
  outputPrompt: $<HTMLSpanElement>('output-prompt'),
  outputText: $<HTMLSpanElement>('output-text'),
  cursor: $<HTMLSpanElement>('cursor'),
}

type PageState = 'idle' | 'loading' | 'ready' | 'generating' | 'done' | 'error'

function setState(state: PageState, status?: string) {
  document.body.dataset.state = state
  if (status !== undefined) ui.status.textContent = status
  const loaded = state === 'ready' || state === 'done' || (state === 'error' && modelReady)
  ui.generate.disabled = !loaded
  ui.load.disabled = state === 'loading' || state === 'generating'
  ui.model.disabled = state === 'loading' || state === 'generating'
  ui.stop.disabled = state !== 'generating'
  ui.cursor.hidden = state !== 'generating'
}

const params = new URLSearchParams(location.search)
const forcedProvider = params.get('ep') === 'wasm' || params.get('ep') === 'webgpu' ? (params.get('ep') as 'wasm' | 'webgpu') : undefined
let modelReady = false
let modelLabel = ''
let worker: Worker

function startWorker(): Worker {
  const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })
  w.onmessage = (e: MessageEvent<FromWorker>) => onWorkerMessage(e.data)
  w.onerror = (e) => {
    e.preventDefault()
    setState('error', `The inference worker failed: ${e.message || 'it could not start'}`)
  }
  return w
}

const send = (msg: ToWorker) => worker.postMessage(msg)

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} kB`
}

let generated = { tokens: 0, started: 0 }

function onWorkerMessage(msg: FromWorker) {
  switch (msg.type) {
    case 'progress': {
      ui.progress.hidden = false
      const pct = msg.total ? Math.min(100, (100 * msg.loaded) / msg.total) : 50
      ui.progressBar.style.width = `${pct}%`
      ui.status.textContent = `${msg.cached ? 'From cache' : 'Downloading'} ${msg.file}: ${formatBytes(msg.loaded)}${msg.total ? ` of ${formatBytes(msg.total)}` : ''}`
      break
    }
    case 'ready': {
      modelReady = true
      ui.progressBar.style.width = '100%'
      setTimeout(() => { ui.progress.hidden = true }, 400)
      const backend = msg.backend === 'wasm' ? `WASM, ${msg.threads} thread${msg.threads === 1 ? '' : 's'}` : 'WebGPU'
      modelLabel = `${msg.name} (${msg.architecture}, ${msg.vocabSize} tokens) · ${backend}${msg.cached ? ' · from cache' : ''}`
      setState('ready', `Ready: ${modelLabel}`)
      break
    }
    case 'token': {
      ui.outputText.textContent += msg.text
      generated.tokens++
      showSpeed(generated.tokens, (performance.now() - generated.started) / 1000)
      break
    }
    case 'done': {
      showSpeed(msg.tokens, msg.seconds)
      const why = msg.finishReason === 'eos' ? 'end of text' : msg.finishReason === 'length' ? 'max tokens' : msg.finishReason
      ui.stats.textContent += ` · ${why}`
      setState('done', `Ready: ${modelLabel}`)
      break
    }
    case 'error':
      setState('error', `Error: ${msg.message}`)
      break
  }
}

function showSpeed(tokens: number, seconds: number) {
  const rate = seconds > 0 ? tokens / seconds : 0
  ui.stats.textContent = `${tokens} token${tokens === 1 ? '' : 's'} · ${rate.toFixed(1)} tokens/s`
}

function loadModel(base: string) {
  modelReady = false
  ui.progress.hidden = false
  ui.progressBar.style.width = '0%'
  setState('loading', `Loading ${base}…`)
  send({ type: 'load', base, executionProvider: forcedProvider })
}

/** Reads a number field; throws a message naming the field when it is out of range. */
function readNumber(input: HTMLInputElement, name: string, opts: { min?: number; max?: number; integer?: boolean; optional?: boolean }): number | undefined {
  const raw = input.value.trim()
  if (raw === '' && opts.optional) return undefined
  const n = Number(raw)
  const ok = raw !== '' && Number.isFinite(n) && (!opts.integer || Number.isInteger(n)) &&
    (opts.min === undefined || n >= opts.min) && (opts.max === undefined || n <= opts.max)
  if (!ok) {
    input.focus()
    const range = [opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : ''].filter(Boolean).join(' and ')
    throw new Error(`${name} must be ${opts.integer ? 'an integer' : 'a number'}${range ? ' ' + range : ''}`)
  }
  return n
}

function readOptions(): GenerateOptions {
  return {
    maxNewTokens: readNumber(ui.maxTokens, 'Max tokens', { min: 1, max: 4096, integer: true })!,
    temperature: readNumber(ui.temperature, 'Temperature', { min: 0, max: 100 })!,
    topK: readNumber(ui.topK, 'Top-k', { min: 0, integer: true })!,
    topP: readNumber(ui.topP, 'Top-p', { min: 0.000001, max: 1 })!,
    repetitionPenalty: readNumber(ui.repetitionPenalty, 'Repetition penalty', { min: 0.000001, max: 100 })!,
    seed: readNumber(ui.seed, 'Seed', { min: 0, max: 2 ** 32 - 1, integer: true, optional: true }),
  }
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault()
  if (!modelReady) return
  let options: GenerateOptions
  try {
    options = readOptions()
  } catch (err) {
    ui.stats.textContent = (err as Error).message
    return
  }
  ui.outputPrompt.textContent = ui.prompt.value
  ui.outputText.textContent = ''
  ui.stats.textContent = ''
  generated = { tokens: 0, started: performance.now() }
  setState('generating')
  send({ type: 'generate', prompt: ui.prompt.value, options })
})

ui.stop.addEventListener('click', () => send({ type: 'stop' }))
ui.load.addEventListener('click', () => { if (ui.model.value) loadModel(ui.model.value) })
ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) ui.form.requestSubmit()
})

/** The model list: models/index.json from the server (or a static host), plus ?model=PATH. */
async function findModels(): Promise<{ name: string; path: string }[]> {
  const found: { name: string; path: string }[] = []
  try {
    const res = await fetch('models/index.json', { cache: 'no-cache' })
    if (res.ok) {
      const index = (await res.json()) as { models?: { name: string; path: string }[] }
      for (const m of index.models ?? []) found.push({ name: m.name, path: m.path })
    }
  } catch { /* no list: a static host without index.json */ }
  const asked = params.get('model')
  if (asked) {
    // ?model=NAME picks a listed model; anything else is a folder path or URL.
    const listed = found.find((m) => m.name === asked)
    if (listed) found.unshift(...found.splice(found.indexOf(listed), 1))
    else found.unshift({ name: asked, path: asked.endsWith('/') ? asked : asked + '/' })
  }
  return found
}

async function init() {
  worker = startWorker()
  setState('idle')
  const models = await findModels()
  for (const m of models) ui.model.add(new Option(m.name, m.path))
  if (!models.length) {
    setState('error', 'No model found: serve one with `lmp serve --exp NAME`, or open this page with ?model=path/to/model/')
    return
  }
  loadModel(models[0].path)
}

init().catch((err) => setState('error', `Error: ${(err as Error).message}`))
