// The page: picks a model (served, or opened from disk), hands it to the inference worker, and shows
// four views in tabs: Generate (streamed text), Score (per-token surprisal), Inside (embedding space,
// attention) and Training (curves from metrics.jsonl). body[data-state] says where the model and the
// worker are (idle, loading, ready, generating, working, done, error); the browser tests wait on it.
import type { GenerateOptions } from '../src/infer/generate.ts'
import { $, formatBytes, type PageContext } from './dom.ts'
import { insideView } from './inside-view.ts'
import type { FromWorker, Provider, ToWorker } from './protocol.ts'
import { scoreView } from './score-view.ts'
import { trainingView } from './training-view.ts'

const ui = {
  model: $<HTMLSelectElement>('model'),
  load: $<HTMLButtonElement>('load'),
  openFolder: $<HTMLInputElement>('open-folder'),
  openFiles: $<HTMLInputElement>('open-files'),
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

type PageState = 'idle' | 'loading' | 'ready' | 'generating' | 'working' | 'done' | 'error'

const params = new URLSearchParams(location.search)
const ep = params.get('ep')
const forcedProvider: Provider | undefined = ep === 'wasm' || ep === 'webgpu' ? ep : undefined
const threads = Number(params.get('threads')) || undefined
let state: PageState = 'idle'
let modelReady = false
let modelLabel = ''
let worker: Worker
/** The state to return to when a score/embedding/attention job ends. */
let settled: PageState = 'ready'

const page: PageContext = {
  canRun: () => modelReady && (state === 'ready' || state === 'done' || state === 'error'),
  run(msg: ToWorker) {
    settled = state === 'done' ? 'done' : 'ready'
    setState('working')
    worker.postMessage(msg)
  },
}
const score = scoreView(page)
const inside = insideView(page, score.text)
const training = trainingView()

function setState(next: PageState, status?: string) {
  state = next
  document.body.dataset.state = next
  if (status !== undefined) ui.status.textContent = status
  const busy = next === 'loading' || next === 'generating' || next === 'working'
  ui.generate.disabled = !page.canRun()
  ui.load.disabled = ui.model.disabled = ui.openFolder.disabled = ui.openFiles.disabled = busy
  ui.stop.disabled = next !== 'generating'
  ui.cursor.hidden = next !== 'generating'
  score.update(page.canRun())
  inside.update(page.canRun())
}

function startWorker(): Worker {
  const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })
  w.onmessage = (e: MessageEvent<FromWorker>) => onWorkerMessage(e.data)
  w.onerror = (e) => {
    e.preventDefault()
    setState('error', `The inference worker failed: ${e.message || 'it could not start'}`)
  }
  return w
}

const send = (msg: ToWorker, transfer: Transferable[] = []) => worker.postMessage(msg, transfer)

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
      ui.progress.hidden = true
      const gpu = msg.adapter ? ` (${msg.adapter.name}${msg.adapter.fallback ? ', software' : ''})` : ''
      const backend = msg.backend === 'wasm' ? `WASM, ${msg.threads} thread${msg.threads === 1 ? '' : 's'}` : `WebGPU${gpu}`
      modelLabel = `${msg.name} (${msg.architecture}, ${msg.vocabSize} tokens) · ${backend}${msg.cached ? ' · from cache' : ''}`
      score.modelChanged(msg.vocabSize)
      inside.modelChanged(msg.attentionLayers)
      setState('ready', `Ready: ${modelLabel}`)
      if (currentTab === 'inside') inside.shown()
      if (currentTab === 'training') training.shown()
      break
    }
    case 'prompt':
      ui.outputPrompt.textContent = msg.text
      break
    case 'token': {
      ui.outputText.textContent += msg.text
      generated.tokens++
      showSpeed(generated.tokens, (performance.now() - generated.started) / 1000)
      break
    }
    case 'done': {
      showSpeed(msg.tokens, msg.seconds)
      ui.stats.dataset.tokens = String(msg.tokens)
      ui.stats.dataset.seconds = String(msg.seconds)
      ui.stats.dataset.firstTokenSeconds = String(msg.firstTokenSeconds ?? '')
      const why = msg.finishReason === 'eos' ? 'end of text' : msg.finishReason === 'length' ? 'max tokens' : msg.finishReason
      ui.stats.textContent += ` · ${why}`
      setState('done', `Ready: ${modelLabel}`)
      break
    }
    case 'scored':
      score.onMessage(msg)
      setState(settled)
      break
    case 'neighbours':
    case 'attention':
      inside.onMessage(msg)
      setState(settled)
      break
    case 'error':
      if (msg.job === 'score') score.onMessage(msg)
      else if (msg.job === 'embedding' || msg.job === 'attention') inside.onMessage(msg)
      else {
        if (msg.job === 'load') {
          modelReady = false
          ui.progress.hidden = true
        }
        setState('error', `Error: ${msg.message}`)
        break
      }
      setState(settled)
      break
  }
}

function showSpeed(tokens: number, seconds: number) {
  const rate = seconds > 0 ? tokens / seconds : 0
  ui.stats.textContent = `${tokens} token${tokens === 1 ? '' : 's'} · ${rate.toFixed(1)} tokens/s`
}

function beginLoad(what: string) {
  modelReady = false
  ui.progress.hidden = false
  ui.progressBar.style.width = '0%'
  setState('loading', `Loading ${what}…`)
}

function loadModel(base: string) {
  beginLoad(base)
  training.setSource({ url: new URL('metrics.jsonl', new URL(base, location.href)).href })
  send({ type: 'load', base, executionProvider: forcedProvider, threads })
}

// --- a model folder opened from disk ------------------------------------------------------------

const folderOf = (f: File) => f.webkitRelativePath.split('/').slice(0, -1).join('/')
let opened: { name: string; files: File[] } | undefined

/**
 * Finds the exported model among the opened files (the experiment folder or its onnx/ folder, or the
 * files themselves): manifest.json, and the model and tokenizer files it names beside it; metrics.jsonl
 * anywhere in the folder.
 */
async function loadFromDisk(name: string, files: File[], wasReady = modelReady) {
  // Nothing reached the worker yet: the model loaded before is still there.
  const fail = (message: string) => {
    modelReady = wasReady
    setState('error', `Error: ${message}`)
  }
  const manifests = files.filter((f) => f.name === 'manifest.json').sort((a, b) => a.webkitRelativePath.length - b.webkitRelativePath.length)
  if (manifests.length === 0) {
    fail(`no manifest.json among the ${files.length} opened files: open an exported model (EXP/onnx/)`)
    return
  }
  const manifestFile = manifests[0]
  const dir = folderOf(manifestFile)
  const manifestBytes = await manifestFile.arrayBuffer()
  let manifest: { model?: unknown; tokenizer?: unknown }
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes))
  } catch {
    fail('the opened manifest.json is not valid JSON')
    return
  }
  const beside = (file: unknown) => files.find((f) => f.name === file && folderOf(f) === dir)
  const model = beside(manifest.model)
  const tokenizer = beside(manifest.tokenizer)
  if (!model || !tokenizer) {
    const missing = [model ? '' : String(manifest.model), tokenizer ? '' : String(manifest.tokenizer)].filter(Boolean)
    fail(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not among the opened files (manifest.json names ${missing.length > 1 ? 'them' : 'it'})`)
    return
  }
  opened = { name, files }
  const label = `${name} (from disk)`
  const option = [...ui.model.options].find((o) => o.value === 'disk:') ?? ui.model.appendChild(new Option(label, 'disk:'))
  option.text = label
  ui.model.value = 'disk:'
  beginLoad(label)
  const metrics = files.filter((f) => f.name === 'metrics.jsonl').sort((a, b) => a.webkitRelativePath.length - b.webkitRelativePath.length)[0]
  training.setSource(metrics ? { name: `${name}/metrics.jsonl`, text: await metrics.text() } : { missing: `No metrics.jsonl among the opened files of ${name}: open the experiment folder (it sits beside onnx/), or open one here.` })
  const [modelBytes, tokenizerBytes] = await Promise.all([model.arrayBuffer(), tokenizer.arrayBuffer()])
  send({ type: 'load-files', name: label, manifest: manifestBytes, model: modelBytes, tokenizer: tokenizerBytes, executionProvider: forcedProvider, threads },
    [manifestBytes, modelBytes, tokenizerBytes])
}

function onOpen(input: HTMLInputElement) {
  const files = [...(input.files ?? [])]
  input.value = '' // the same folder can be opened again
  if (files.length === 0) return
  // The folder's name, or 'model' for loose files.
  const name = files[0].webkitRelativePath.split('/')[0] || 'model'
  const wasReady = modelReady
  beginLoad(name) // at once, so that nothing can start while the files are read
  loadFromDisk(name, files, wasReady).catch((err) => setState('error', `Error: ${(err as Error).message}`))
}

ui.openFolder.addEventListener('change', () => onOpen(ui.openFolder))
ui.openFiles.addEventListener('change', () => onOpen(ui.openFiles))

// --- Generate -----------------------------------------------------------------------------------

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
  if (!page.canRun()) return
  let options: GenerateOptions
  try {
    options = readOptions()
  } catch (err) {
    ui.stats.textContent = (err as Error).message
    return
  }
  ui.outputPrompt.textContent = ui.prompt.value // until the worker sends the prompt as the model reads it
  ui.outputText.textContent = ''
  ui.stats.textContent = ''
  generated = { tokens: 0, started: performance.now() }
  setState('generating')
  send({ type: 'generate', prompt: ui.prompt.value, options })
})

ui.stop.addEventListener('click', () => send({ type: 'stop' }))
ui.load.addEventListener('click', () => {
  if (ui.model.value === 'disk:' && opened) loadFromDisk(opened.name, opened.files).catch((err) => setState('error', `Error: ${(err as Error).message}`))
  else if (ui.model.value) loadModel(ui.model.value)
})
ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) ui.form.requestSubmit()
})

// --- tabs ---------------------------------------------------------------------------------------

const TABS = ['generate', 'score', 'inside', 'training'] as const
type Tab = (typeof TABS)[number]
let currentTab: Tab = 'generate'

function showTab(tab: Tab) {
  currentTab = tab
  for (const t of TABS) {
    $(`tab-${t}`).setAttribute('aria-selected', String(t === tab))
    $(`view-${t}`).hidden = t !== tab
  }
  if (tab === 'inside') inside.shown()
  if (tab === 'training') training.shown()
}

for (const t of TABS) {
  $(`tab-${t}`).addEventListener('click', () => {
    history.replaceState(null, '', `#${t}`)
    showTab(t)
  })
}
addEventListener('hashchange', () => {
  const tab = location.hash.slice(1) as Tab
  if (TABS.includes(tab)) showTab(tab)
})

// --- start --------------------------------------------------------------------------------------

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
  const tab = location.hash.slice(1) as Tab
  showTab(TABS.includes(tab) ? tab : 'generate')
  setState('idle')
  // The service worker keeps the page and the runtime for offline use (the worker caches the models).
  if ('serviceWorker' in navigator && isSecureContext && params.get('sw') !== '0') {
    navigator.serviceWorker.register('sw.js').catch(() => { /* the page works without it, online */ })
  }
  const models = await findModels()
  for (const m of models) ui.model.add(new Option(m.name, m.path))
  if (!models.length) {
    training.setSource(undefined)
    setState('error', 'No model found: serve one with `lmp serve --exp NAME`, open this page with ?model=path/to/model/, or open a model folder from disk')
    return
  }
  loadModel(models[0].path)
}

init().catch((err) => setState('error', `Error: ${(err as Error).message}`))
