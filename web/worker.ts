// The inference worker: onnxruntime-web (WASM, or WebGPU when the browser has it) runs here so the page
// never freezes. It fetches the exported model folder (manifest.json, model.onnx, tokenizer.json) with
// a progress report, keeps the files in the Cache API for offline use, and streams generated tokens.
// Generation and the tokenizer are the same src/ code the server and the CLI run.
import * as ort from 'onnxruntime-web'
import { generate, type GenerateOptions } from '../src/infer/generate.ts'
import { loadOrtModel } from '../src/infer/ort-model.ts'
import type { Manifest, StepModel } from '../src/infer/types.ts'
import { tokenizerFromJSON, type Tokenizer } from '../src/tokenizer/index.ts'
import type { FromWorker, ToWorker } from './protocol.ts'

const scope = self as unknown as DedicatedWorkerGlobalScope
const post = (msg: FromWorker) => scope.postMessage(msg)

// The runtime's .mjs/.wasm files sit in ort/ beside this script (the server serves them from
// node_modules; `npm run build:web` copies them for static hosting). No CDN.
ort.env.wasm.wasmPaths = new URL('./ort/', scope.location.href).href
// Several WASM threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP/COEP headers).
const threads = scope.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1
ort.env.wasm.numThreads = threads

let current: { model: StepModel; tokenizer: Tokenizer; manifest: Manifest } | undefined
let stopRequested = false
let busy = false

const CACHE = 'lmp-models-v1'

async function openCache(): Promise<Cache | undefined> {
  try {
    return typeof caches === 'undefined' ? undefined : await caches.open(CACHE)
  } catch {
    return undefined // e.g. an insecure context
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as unknown as BufferSource)
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/** Reads a response body, reporting progress as it arrives. */
async function readWithProgress(res: Response, file: string): Promise<Uint8Array> {
  const header = res.headers.get('content-length')
  const total = header ? Number(header) : null
  if (!res.body) return new Uint8Array(await res.arrayBuffer())
  const reader = res.body.getReader()
  const parts: Uint8Array[] = []
  let loaded = 0
  let lastReport = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    parts.push(value)
    loaded += value.byteLength
    if (loaded - lastReport > 256 * 1024) {
      lastReport = loaded
      post({ type: 'progress', file, loaded, total, cached: false })
    }
  }
  const bytes = new Uint8Array(loaded)
  let at = 0
  for (const p of parts) { bytes.set(p, at); at += p.byteLength }
  post({ type: 'progress', file, loaded, total: total ?? loaded, cached: false })
  return bytes
}

/**
 * The manifest comes from the network when it can (so a re-exported model is picked up) and from the
 * cache when offline; model.onnx and tokenizer.json are cached under the model's sha256, so they are
 * downloaded once per version.
 */
async function fetchManifest(cache: Cache | undefined, url: string): Promise<{ manifest: Manifest; cached: boolean }> {
  let res: Response | undefined
  let cached = false
  try {
    res = await fetch(url, { cache: 'no-cache' })
    if (!res.ok) throw new Error(`manifest.json: HTTP ${res.status} from ${url}`)
    await cache?.put(url, res.clone())
  } catch (err) {
    res = await cache?.match(url)
    if (!res) throw err
    cached = true
  }
  let manifest: Manifest
  try {
    manifest = await res.json()
  } catch {
    throw new Error(`manifest.json at ${url} is not valid JSON`)
  }
  if (manifest?.format !== 'lmp-onnx') throw new Error(`manifest.json at ${url} is not an lmp-onnx manifest`)
  return { manifest, cached }
}

async function fetchVersioned(cache: Cache | undefined, url: string, version: string, file: string): Promise<{ bytes: Uint8Array; cached: boolean }> {
  const key = `${url}${url.includes('?') ? '&' : '?'}v=${version}`
  const hit = await cache?.match(key)
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer())
    post({ type: 'progress', file, loaded: bytes.byteLength, total: bytes.byteLength, cached: true })
    return { bytes, cached: true }
  }
  const res = await fetch(url, { cache: 'no-cache' })
  if (!res.ok) throw new Error(`${file}: HTTP ${res.status} from ${url}`)
  const bytes = await readWithProgress(res, file)
  return { bytes, cached: false }
}

async function pickProvider(wanted: 'wasm' | 'webgpu' | undefined): Promise<'wasm' | 'webgpu'> {
  if (wanted) return wanted
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu
  try {
    if (gpu && (await gpu.requestAdapter())) return 'webgpu'
  } catch { /* no adapter */ }
  return 'wasm'
}

async function load(base: string, wanted?: 'wasm' | 'webgpu') {
  await current?.model.release?.()
  current = undefined
  const baseUrl = new URL(base, scope.location.href)
  const cache = await openCache()
  const { manifest, cached: manifestCached } = await fetchManifest(cache, new URL('manifest.json', baseUrl).href)
  const modelUrl = new URL(manifest.model, baseUrl).href
  const tokenizerUrl = new URL(manifest.tokenizer, baseUrl).href
  const [model, tok] = await Promise.all([
    fetchVersioned(cache, modelUrl, manifest.sha256, manifest.model),
    fetchVersioned(cache, tokenizerUrl, manifest.sha256, manifest.tokenizer),
  ])
  const sha = await sha256Hex(model.bytes)
  if (sha !== manifest.sha256) {
    throw new Error(`${manifest.model} does not match the sha256 in manifest.json (a corrupt or partial file)`)
  }
  let tokenizer: Tokenizer
  try {
    tokenizer = tokenizerFromJSON(JSON.parse(new TextDecoder().decode(tok.bytes)))
  } catch (err) {
    throw new Error(`${manifest.tokenizer}: ${(err as Error).message}`)
  }
  let provider = await pickProvider(wanted)
  let stepModel: StepModel
  try {
    stepModel = await loadOrtModel(ort, model.bytes, manifest, { executionProviders: [provider] })
  } catch (err) {
    if (provider !== 'webgpu' || wanted === 'webgpu') throw new Error(`cannot load ${manifest.model}: ${firstLine(err)}`)
    provider = 'wasm' // WebGPU is there but cannot run this graph: WASM can
    stepModel = await loadOrtModel(ort, model.bytes, manifest, { executionProviders: ['wasm'] })
  }
  // Cache only what loaded: a corrupt download is never kept.
  if (cache && !model.cached) {
    const v = manifest.sha256
    await cache.put(`${modelUrl}?v=${v}`, new Response(model.bytes as unknown as BodyInit))
    await cache.put(`${tokenizerUrl}?v=${v}`, new Response(tok.bytes as unknown as BodyInit))
  }
  current = { model: stepModel, tokenizer, manifest }
  const name = decodeURIComponent(baseUrl.pathname.split('/').filter(Boolean).pop() ?? 'model')
  post({
    type: 'ready',
    name,
    architecture: manifest.architecture,
    vocabSize: manifest.vocabSize,
    backend: provider,
    threads: provider === 'wasm' ? threads : 0,
    cached: manifestCached || model.cached,
  })
}

// A macrotask turn between tokens lets a 'stop' message in (setTimeout would be clamped to 4 ms).
const channel = new MessageChannel()
const yieldToEvents = () => new Promise<void>((resolve) => {
  channel.port1.onmessage = () => resolve()
  channel.port2.postMessage(null)
})

async function run(prompt: string, options: GenerateOptions) {
  if (!current) throw new Error('no model is loaded')
  stopRequested = false
  const started = performance.now()
  let firstTokenSeconds: number | null = null
  let tokens = 0
  let finishReason = 'stopped'
  for await (const ev of generate(current.model, current.tokenizer, prompt, options)) {
    tokens++
    if (firstTokenSeconds === null) firstTokenSeconds = (performance.now() - started) / 1000
    post({ type: 'token', text: ev.textDelta, tokenId: ev.tokenId })
    if (ev.done) finishReason = ev.finishReason ?? 'length'
    await yieldToEvents()
    if (stopRequested) break
  }
  post({ type: 'done', finishReason, tokens, seconds: (performance.now() - started) / 1000, firstTokenSeconds })
}

const firstLine = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0]

scope.onmessage = async (e: MessageEvent<ToWorker>) => {
  const msg = e.data
  if (msg.type === 'stop') {
    stopRequested = true
    return
  }
  if (busy) {
    post({ type: 'error', message: 'busy: wait for the current job to finish' })
    return
  }
  busy = true
  try {
    if (msg.type === 'load') await load(msg.base, msg.executionProvider)
    else if (msg.type === 'generate') await run(msg.prompt, msg.options)
  } catch (err) {
    post({ type: 'error', message: firstLine(err) })
  } finally {
    busy = false
  }
}
