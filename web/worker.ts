// The inference worker: onnxruntime-web (WASM, or WebGPU on a real GPU) runs here so the page
// never freezes. It fetches the exported model folder (manifest.json, model.onnx, lmp_tokenizer.json) with
// a progress report, keeps the files in the Cache API for offline use (or takes the files the user
// opened from disk), and runs the page's jobs one at a time: generate (streamed), score, embedding
// neighbours, attention weights. Generation, scoring and the tokenizer are the same src/ code the server
// and the CLI run.
// The WebGPU build: the default bundle's WebGPU path (JSEP) returns LSTM cell state equal to the hidden
// state, so every LSTM generated wrong text from its second call (issue 11); this build runs WebGPU and
// WASM through one runtime (ort-wasm-simd-threaded.asyncify.{mjs,wasm}).
import * as ort from 'onnxruntime-web/webgpu'
import { generate, promptIds, type GenerateOptions } from '../src/infer/generate.ts'
import { loadOrtModel, SMALL_MODEL_BYTES, type OrtLike } from '../src/infer/ort-model.ts'
import { scoreText } from '../src/infer/perplexity.ts'
import type { Manifest, StepModel } from '../src/infer/types.ts'
import type { Tokenizer } from '../src/tokenizer/index.ts'
import { loadTokenizerFromJSON } from '../src/tokenizer/gpt2.ts'
import { analogyVector, nearest, readEmbedding, rowOf, type Embedding } from './embedding.ts'
import { tokenPieces, tokenTexts } from './pieces.ts'
import type { FromWorker, Job, Provider, ScoredToken, ToWorker } from './protocol.ts'

const scope = self as unknown as DedicatedWorkerGlobalScope
const post = (msg: FromWorker, transfer: Transferable[] = []) => scope.postMessage(msg, transfer)

// The runtime's .mjs/.wasm files sit in ort/ beside this script (the server serves them from
// node_modules; `npm run build:web` copies them for static hosting). No CDN.
ort.env.wasm.wasmPaths = new URL('./ort/', scope.location.href).href
// Several WASM threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP/COEP headers).
const maxThreads = scope.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1

interface Loaded {
  model: StepModel
  tokenizer: Tokenizer
  manifest: Manifest
  /** model.onnx, kept for the embedding view (read on first use). */
  bytes: Uint8Array
  embedding?: Embedding
}
let current: Loaded | undefined
let stopRequested = false
let busy = false

// loadOrtModel's StepModel returns logits and state only; the attention view needs the graph's other
// outputs, so the session it creates is wrapped to hand over the outputs of the calls made while
// `capture` is set.
let capture: ((outputs: Record<string, { data: unknown; dims: readonly number[] }>) => void) | undefined
const capturingOrt: OrtLike = {
  Tensor: ort.Tensor as unknown as OrtLike['Tensor'],
  InferenceSession: {
    async create(bytes, options) {
      // Errors only (3): on WebGPU every session warns that shape ops run on the CPU, which is by design.
      const session = await ort.InferenceSession.create(bytes, { ...options, logSeverityLevel: 3 })
      return {
        async run(feeds) {
          const out = await session.run(feeds as Record<string, ort.Tensor>)
          capture?.(out)
          return out
        },
        release: () => session.release(),
        inputMetadata: session.inputMetadata,
        outputMetadata: session.outputMetadata,
      }
    },
  },
}

// GPT-2's vocabulary, built beside this script (web/build.mjs): imported only for a gpt2-tokenizer model.
const loadGpt2Ranks = () => import(new URL('./gpt2-ranks.js', scope.location.href).href)

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

function parseManifest(text: string, where: string): Manifest {
  let manifest: Manifest
  try {
    manifest = JSON.parse(text)
  } catch {
    throw new Error(`manifest.json ${where} is not valid JSON`)
  }
  if (manifest?.format !== 'lmp-onnx') throw new Error(`manifest.json ${where} is not an lmp-onnx manifest`)
  return manifest
}

/**
 * The manifest comes from the network when it can (so a re-exported model is picked up) and from the
 * cache when offline; model.onnx and the tokenizer are cached under the model's sha256, so they are
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
  return { manifest: parseManifest(await res.text(), `at ${url}`), cached }
}

async function fetchVersioned(cache: Cache | undefined, url: string, version: string, file: string): Promise<{ bytes: Uint8Array; cached: boolean }> {
  const hit = await cache?.match(versioned(url, version))
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer())
    post({ type: 'progress', file, loaded: bytes.byteLength, total: bytes.byteLength, cached: true })
    return { bytes, cached: true }
  }
  const res = await fetch(url, { cache: 'no-cache' })
  if (!res.ok) throw new Error(`${file}: HTTP ${res.status} from ${url}`)
  return { bytes: await readWithProgress(res, file), cached: false }
}

const versioned = (url: string, version: string) => `${url}${url.includes('?') ? '&' : '?'}v=${version}`

// adapter.info (Chrome 114+) holds isFallbackAdapter since Chrome 136; older browsers had it on the adapter.
interface GpuAdapterInfo { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean }
type Adapter = { info?: GpuAdapterInfo; isFallbackAdapter?: boolean }

/** The browser's default WebGPU adapter: its name and whether it is a fallback (software) adapter;
 * undefined when there is none. */
async function gpuAdapter(): Promise<{ name: string; fallback: boolean } | undefined> {
  try {
    const adapter = (await navigator.gpu?.requestAdapter()) as Adapter | null | undefined
    if (!adapter) return undefined
    const info = adapter.info ?? {}
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter'
    return { name, fallback: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) }
  } catch {
    return undefined
  }
}

/** The provider asked for (?ep=), else WebGPU on a real GPU and WASM otherwise: a fallback adapter is a
 * software rasterizer on the CPU (SwiftShader, say), far slower than WASM. */
async function pickProvider(wanted: Provider | undefined): Promise<Provider> {
  if (wanted) return wanted
  const adapter = await gpuAdapter()
  return adapter && !adapter.fallback ? 'webgpu' : 'wasm'
}

let threadsSet = false
/** WASM threads can only be chosen before the first session starts the runtime: the number asked
 * for (?threads=N), else 1 for a small first model and up to 4 for a large one. */
function setThreads(asked: number | undefined, modelBytes: number): number {
  if (!threadsSet) {
    const available = scope.crossOriginIsolated ? navigator.hardwareConcurrency || 1 : 1
    ort.env.wasm.numThreads = asked && asked > 0 ? Math.min(asked, available) : modelBytes < SMALL_MODEL_BYTES ? 1 : maxThreads
    threadsSet = true
  }
  return ort.env.wasm.numThreads ?? 1
}

/** Checks the files, starts a session, and makes the model current. */
async function start(manifest: Manifest, bytes: Uint8Array, tokenizerBytes: Uint8Array, opts: { name: string; cached: boolean; wanted?: Provider; threads?: number }) {
  const sha = await sha256Hex(bytes)
  if (sha !== manifest.sha256) {
    throw new Error(`${manifest.model} does not match the sha256 in manifest.json (a corrupt or partial file)`)
  }
  let tokenizer: Tokenizer
  try {
    tokenizer = await loadTokenizerFromJSON(JSON.parse(new TextDecoder().decode(tokenizerBytes)), loadGpt2Ranks)
  } catch (err) {
    throw new Error(`${manifest.tokenizer}: ${(err as Error).message}`)
  }
  const threads = setThreads(opts.threads, bytes.byteLength)
  let provider = await pickProvider(opts.wanted)
  let model: StepModel
  try {
    model = await loadOrtModel(capturingOrt, bytes, manifest, { executionProviders: [provider] })
  } catch (err) {
    if (provider !== 'webgpu' || opts.wanted === 'webgpu') throw new Error(`cannot load ${manifest.model}: ${firstLine(err)}`)
    provider = 'wasm' // WebGPU is there but cannot run this graph: WASM can
    model = await loadOrtModel(capturingOrt, bytes, manifest, { executionProviders: ['wasm'] })
  }
  current = { model, tokenizer, manifest, bytes }
  post({
    type: 'ready',
    name: opts.name,
    architecture: manifest.architecture,
    vocabSize: manifest.vocabSize,
    backend: provider,
    adapter: provider === 'webgpu' ? await gpuAdapter() : undefined,
    threads: provider === 'wasm' ? threads : 0,
    cached: opts.cached,
    attentionLayers: attentionOutputs(manifest).length,
  })
}

async function unload() {
  const old = current
  current = undefined
  await old?.model.release?.()
}

async function load(base: string, wanted?: Provider, threads?: number) {
  await unload()
  const baseUrl = new URL(base, scope.location.href)
  const cache = await openCache()
  const { manifest, cached: manifestCached } = await fetchManifest(cache, new URL('manifest.json', baseUrl).href)
  const modelUrl = new URL(manifest.model, baseUrl).href
  const tokenizerUrl = new URL(manifest.tokenizer, baseUrl).href
  const [model, tok] = await Promise.all([
    fetchVersioned(cache, modelUrl, manifest.sha256, manifest.model),
    fetchVersioned(cache, tokenizerUrl, manifest.sha256, manifest.tokenizer),
  ])
  const name = decodeURIComponent(baseUrl.pathname.split('/').filter(Boolean).pop() ?? 'model')
  await start(manifest, model.bytes, tok.bytes, { name, cached: manifestCached || model.cached, wanted, threads })
  // Cache only what loaded: a corrupt download is never kept. In the background: the model is ready, and
  // writing a large one (GPT-2's vocabulary makes even a small model 13 MB) must not hold back the first
  // job, which would be refused as busy. Caching is for offline use only: a failure costs nothing online.
  if (cache && !model.cached) {
    void (async () => {
      await cache.put(versioned(modelUrl, manifest.sha256), new Response(model.bytes as unknown as BodyInit))
      await cache.put(versioned(tokenizerUrl, manifest.sha256), new Response(tok.bytes as unknown as BodyInit))
    })().catch(() => {})
  }
}

async function loadFiles(msg: Extract<ToWorker, { type: 'load-files' }>) {
  await unload()
  const manifest = parseManifest(new TextDecoder().decode(msg.manifest), `in ${msg.name}`)
  await start(manifest, new Uint8Array(msg.model), new Uint8Array(msg.tokenizer), { name: msg.name, cached: false, wanted: msg.executionProvider, threads: msg.threads })
}

// A macrotask turn between tokens lets a 'stop' message in (setTimeout would be clamped to 4 ms).
const channel = new MessageChannel()
const yieldToEvents = () => new Promise<void>((resolve) => {
  channel.port1.onmessage = () => resolve()
  channel.port2.postMessage(null)
})

function loaded(): Loaded {
  if (!current) throw new Error('no model is loaded')
  return current
}

async function run(prompt: string, options: GenerateOptions) {
  const { model, tokenizer } = loaded()
  stopRequested = false
  const started = performance.now()
  let firstTokenSeconds: number | null = null
  let tokens = 0
  let finishReason = 'stopped'
  // The generated text continues the prompt's token texts, not the prompt as typed: a BPE word-final
  // token carries its space after it ('get '), so the text after it starts without one.
  post({ type: 'prompt', text: tokenTexts(tokenizer, promptIds(tokenizer, prompt))?.join('') ?? prompt })
  for await (const ev of generate(model, tokenizer, prompt, options)) {
    tokens++
    if (firstTokenSeconds === null) firstTokenSeconds = (performance.now() - started) / 1000
    post({ type: 'token', text: ev.textDelta, tokenId: ev.tokenId })
    if (ev.done) finishReason = ev.finishReason ?? 'length'
    await yieldToEvents()
    if (stopRequested) break
  }
  post({ type: 'done', finishReason, tokens, seconds: (performance.now() - started) / 1000, firstTokenSeconds })
}

async function score(text: string, alternatives: number) {
  const { model, tokenizer } = loaded()
  const started = performance.now()
  const result = await scoreText(model, tokenizer, text, { perToken: true, alternatives })
  const ids = tokenizer.enc(text)
  const pieces = tokenPieces(tokenizer, ids)
  const str = (id: number) => tokenizer.dec([id])
  // perToken holds every target but PAD, in order; targets are ids[1..].
  const tokens: ScoredToken[] = result.perToken!.map((p, i) => ({
    id: p.tokenId,
    token: str(p.tokenId),
    text: pieces[i + 1],
    special: Object.values(tokenizer.specialIds).includes(p.tokenId),
    logprob: p.logprob,
    top: (p.top ?? []).map((a) => ({ id: a.tokenId, token: str(a.tokenId), logprob: a.logprob })),
  }))
  post({
    type: 'scored',
    tokens,
    count: result.tokens,
    perplexity: result.ppl,
    natsPerToken: result.natsPerToken,
    bitsPerToken: result.bitsPerToken,
    nll: result.nll,
    seconds: (performance.now() - started) / 1000,
  })
}

/** A token the user typed: its exact vocabulary string, '#ID', or a text that encodes to one token. */
function resolveToken(tokenizer: Tokenizer, vocabSize: number, typed: string): number {
  const id = /^#(\d+)$/.exec(typed.trim())
  if (id) {
    const n = Number(id[1])
    if (n >= vocabSize) throw new Error(`#${n}: the vocabulary has ${vocabSize} tokens`)
    return n
  }
  const ids = tokenizer.enc(typed).slice(1, -1)
  if (ids.length === 1) return ids[0]
  for (let i = 0; i < vocabSize; i++) if (tokenizer.dec([i]) === typed) return i // a special token, say
  if (ids.length === 0) throw new Error(`'${typed}' is no token: type a token, or #ID`)
  throw new Error(`'${typed}' is ${ids.length} tokens (${ids.map((t) => JSON.stringify(tokenizer.dec([t]))).join(' ')}): pick one`)
}

function neighbours(msg: Extract<ToWorker, { type: 'embedding' }>) {
  const m = loaded()
  m.embedding ??= readEmbedding(m.bytes, m.manifest.vocabSize)
  const e = m.embedding
  const tok = (typed: string) => resolveToken(m.tokenizer, m.manifest.vocabSize, typed)
  const str = (id: number) => m.tokenizer.dec([id])
  const analogy = msg.b !== undefined && msg.c !== undefined
  const ids = analogy ? [tok(msg.a), tok(msg.b!), tok(msg.c!)] : [tok(msg.a)]
  const query = analogy ? analogyVector(e, ids[0], ids[1], ids[2]) : rowOf(e, ids[0])
  const items = nearest(e, query, msg.count, ids).map((n) => ({ ...n, token: str(n.id) }))
  const shown = ids.map((id) => JSON.stringify(str(id)))
  post({
    type: 'neighbours',
    query: analogy ? `${shown[0]} − ${shown[1]} + ${shown[2]}` : shown[0],
    matrix: { name: e.name, rows: e.rows, dims: e.dims },
    items,
  })
}

/** The graph's attention outputs, in layer order. */
function attentionOutputs(manifest: Manifest): string[] {
  const names = manifest.outputs.map((o) => o.name).filter((n) => /^attentions\.\d+$/.test(n))
  return names.sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))
}

/** Attention is shown over at most this many tokens (a heat map of 128 × 128 cells is already dense). */
const ATTENTION_TOKENS = 128

async function attention(text: string) {
  const { model, tokenizer, manifest } = loaded()
  const names = attentionOutputs(manifest)
  if (names.length === 0) throw new Error(`${manifest.architecture} models have no attention weights`)
  const all = tokenizer.enc(text).slice(0, -1) // the model's inputs: BOS and the text, not the final EOS
  const limit = Math.min(ATTENTION_TOKENS, manifest.maxSeqLen ?? ATTENTION_TOKENS)
  const ids = all.slice(0, limit)
  let outputs: Record<string, { data: unknown; dims: readonly number[] }> | undefined
  capture = (out) => { outputs = out }
  try {
    await model.forward([ids], model.initState(1))
  } finally {
    capture = undefined
  }
  const n = ids.length
  let heads = 0
  const layers = names.map((name) => {
    const t = outputs?.[name]
    if (!t) throw new Error(`the session did not return ${name}`)
    const [batch, h, q, k] = t.dims
    if (t.dims.length !== 4 || batch !== 1 || q !== n || k !== n) throw new Error(`${name} has shape [${t.dims}], expected [1, heads, ${n}, ${n}]`)
    heads = h
    return Float32Array.from(t.data as Float32Array)
  })
  const pieces = tokenPieces(tokenizer, ids)
  const tokens = ids.map((id, i) => pieces[i] || tokenizer.dec([id]))
  post({ type: 'attention', tokens, truncated: all.length > n, heads, layers }, layers.map((l) => l.buffer))
}

const firstLine = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0]

scope.onmessage = async (e: MessageEvent<ToWorker>) => {
  const msg = e.data
  if (msg.type === 'stop') {
    stopRequested = true
    return
  }
  const job: Job = msg.type === 'load-files' ? 'load' : msg.type
  if (busy) {
    post({ type: 'error', message: 'busy: wait for the current job to finish', job })
    return
  }
  busy = true
  try {
    if (msg.type === 'load') await load(msg.base, msg.executionProvider, msg.threads)
    else if (msg.type === 'load-files') await loadFiles(msg)
    else if (msg.type === 'generate') await run(msg.prompt, msg.options)
    else if (msg.type === 'score') await score(msg.text, msg.alternatives)
    else if (msg.type === 'embedding') neighbours(msg)
    else if (msg.type === 'attention') await attention(msg.text)
  } catch (err) {
    post({ type: 'error', message: firstLine(err), job })
  } finally {
    busy = false
  }
}
