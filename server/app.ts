// The express application: OpenAI-style JSON endpoints under /v1, health and metrics, the web page at /,
// the onnxruntime-web runtime files under /ort/ and the exported model files under /models/NAME/.
// createApp takes its models (and optionally an engine) from the caller, so tests can inject fakes.
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import express from 'express'
import { pino, type Logger } from 'pino'
import cors from 'cors'
import { chatCompletionsHandler } from './chat.ts'
import { LmpError } from '../src/errors.ts'
import { completionsHandler, findModel, type RouteContext } from './completions.ts'
import { createBatchingEngine, type Engine } from './engine.ts'
import { errorHandler, HttpError, sendError } from './errors.ts'
import { Metrics } from './metrics.ts'
import { AnswerBudget, backPressuredJson } from './send.ts'
import { bearerCheck, crossSiteGuard, guardedPaths, isLoopback } from './security.ts'
import { ModelRegistry, type ServedModel } from './models.ts'
import { defaultLimits, Validator, type ServerLimits } from './validation.ts'
import { tokenStrings } from '../src/tokenizer/pieces.ts'

export interface AppOptions {
  models: ModelRegistry | ServedModel[]
  engine?: Engine
  /** Bearer token required on /v1/*, /metrics and /models/* when set (server/security.ts); '' is refused. */
  apiKey?: string
  /** Bytes of large JSON answers held at once for clients that have not read them (server/send.ts; default 64 MiB). */
  answerBufferBytes?: number
  /** The address the server binds (default 127.0.0.1): on a loopback address only loopback Host names are served. */
  host?: string
  limits?: Partial<ServerLimits>
  logger?: Logger
  /** The built page (default web/dist). */
  webDir?: string
  /** onnxruntime-web's dist folder (default: resolved from node_modules). */
  ortDir?: string
  /** Origins (or '*') whose browser apps may call /v1/* (CORS); none by default. */
  cors?: string[]
}

export interface App extends express.Express {
  locals: { registry: ModelRegistry; engine: Engine; metrics: Metrics; limits: ServerLimits } & Record<string, unknown>
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const defaultWebDir = path.join(repoRoot, 'web', 'dist')

export function defaultOrtDir(): string {
  // The package's node entry is dist/ort.node.min.js, so its folder is dist/.
  return path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'))
}

export function createApp(opts: AppOptions): App {
  if (opts.apiKey === '') throw new LmpError('the API key is empty: give a key, or none to turn auth off')
  const registry = Array.isArray(opts.models) ? new ModelRegistry(opts.models) : opts.models
  const limits: ServerLimits = { ...defaultLimits, ...opts.limits }
  const log = opts.logger ?? pino({ level: 'info' })
  const metrics = new Metrics()
  const engine = opts.engine ?? createBatchingEngine({
    maxBatch: limits.maxBatch,
    maxQueue: limits.maxQueue,
    onForward: (model, rows, seconds) => metrics.forward(model, rows, seconds),
  })
  const validator = new Validator(limits)
  const ctx: RouteContext = { models: registry, engine, validator, limits, metrics, log }
  const webDir = opts.webDir ?? defaultWebDir
  const ortDir = opts.ortDir ?? defaultOrtDir()

  const app = express() as unknown as App
  app.locals.registry = registry
  app.locals.engine = engine
  app.locals.metrics = metrics
  app.locals.limits = limits
  app.disable('x-powered-by')
  app.set('etag', false)
  app.set('query parser', 'simple')

  // Cross-origin isolation (SharedArrayBuffer, so onnxruntime-web can run multi-threaded WASM), on every response.
  app.use((req, res, next) => {
    res.set({
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'X-Content-Type-Options': 'nosniff',
    })
    const start = performance.now()
    // 'close' comes after 'finish', and also when the client went away before the response ended.
    res.on('close', () => {
      const seconds = (performance.now() - start) / 1000
      const route = (req.route?.path as string | undefined) ?? (req.path.startsWith('/v1/') ? 'unknown' : 'static')
      const disconnected = !res.writableFinished
      metrics.request(route, disconnected ? 499 : res.statusCode, seconds)
      const fields = { method: req.method, url: req.originalUrl.slice(0, 200), status: res.statusCode, ms: Math.round(seconds * 1000), ...res.locals.log as object }
      if (disconnected) log.info({ ...fields, disconnected }, 'client went away')
      else log[res.statusCode >= 500 ? 'error' : 'info'](fields, 'request')
    })
    next()
  })

  app.use(backPressuredJson(new AnswerBudget(opts.answerBufferBytes)))
  app.use(crossSiteGuard({ loopbackOnly: isLoopback(opts.host ?? '127.0.0.1') }))
  if (opts.apiKey) app.use(guardedPaths, bearerCheck(opts.apiKey))

  app.get('/health', (_req, res) => {
    if (!registry.ready) return res.status(503).json({ status: 'loading' })
    // Shutting down (startServer sets this): a load balancer takes the replica out of rotation.
    if ((app.locals.closing as (() => boolean) | undefined)?.()) return res.status(503).json({ status: 'shutting down' })
    // One server runs all its models on one device (--device).
    res.json({ status: 'ok', models: registry.list().map((m) => m.name), device: registry.list()[0]?.device ?? 'cpu' })
  })

  app.get('/metrics', (_req, res) => {
    res.type('text/plain; version=0.0.4').send(metrics.render({ queueDepth: engine.waiting, activeBatch: engine.running, modelsLoaded: registry.list().length }))
  })

  // crossSiteGuard has refused every POST whose Content-Type is not JSON.
  const json = express.json({ limit: limits.bodyBytes, type: () => true, strict: false })
  const v1 = express.Router()
  // CORS on /v1 only (the bearer check lets a preflight through: it carries no Authorization header).
  if (opts.cors?.length) {
    v1.use(cors({ origin: opts.cors.includes('*') ? '*' : opts.cors, maxAge: 600 }))
    // This API is meant to be called from those origins; the page's isolation header would block reading it.
    v1.use((_req, res, next) => { res.set('Cross-Origin-Resource-Policy', 'cross-origin'); next() })
  }

  v1.get('/models', (_req, res) => {
    res.json({
      object: 'list',
      data: registry.list().map((m) => ({
        id: m.name,
        object: 'model',
        created: m.created ?? 0,
        owned_by: 'lmp',
        architecture: m.manifest.architecture,
        vocab_size: m.manifest.vocabSize,
        max_seq_len: m.manifest.maxSeqLen,
        device: m.device ?? 'cpu',
      })),
    })
  })

  v1.post('/completions', json, completionsHandler(ctx))
  v1.post('/chat/completions', json, chatCompletionsHandler(ctx))

  v1.post('/perplexity', json, async (req, res) => {
    const body = validator.check<{ model?: string; text: string; per_token?: boolean | null; top_logprobs?: number | null }>('perplexity', req.body)
    const m = findModel(registry, body.model)
    const tokenCount = m.tokenizer.enc(body.text).length
    if (tokenCount > limits.maxPromptTokens) {
      throw new HttpError(400, `text has ${tokenCount} tokens; the limit is ${limits.maxPromptTokens}`, 'text', 'text_too_long')
    }
    const closed = new AbortController()
    res.on('close', () => { if (!res.writableFinished) closed.abort() })
    const perToken = body.per_token === true || (body.top_logprobs ?? 0) > 0
    const r = await engine.score(m, body.text, { perToken, alternatives: body.top_logprobs ?? undefined }, closed.signal)
    metrics.tokens(m.name, r.tokens, 0)
    // Each token's own text (a space is ' '), specials by name (src/tokenizer/pieces.ts).
    const strings = r.perToken ? tokenStrings(m.tokenizer, [m.tokenizer.specialIds.bos, ...r.perToken.map((p) => p.tokenId)])!.slice(1) : []
    // Alternatives as the page's score view shows them (web/worker.ts), which test/web/views.test.ts compares.
    const str = (id: number) => m.tokenizer.dec([id])
    res.json({
      object: 'perplexity',
      model: m.name,
      tokens: r.tokens,
      nats_per_token: r.natsPerToken,
      bits_per_token: r.bitsPerToken,
      perplexity: r.ppl,
      total_nll: r.nll,
      ...(r.perToken
        ? {
            per_token: r.perToken.map((p, i) => ({
              token_id: p.tokenId,
              token: strings[i],
              logprob: p.logprob,
              ...(p.top ? { top_logprobs: p.top.map((a) => ({ token_id: a.tokenId, token: str(a.tokenId), logprob: a.logprob })) } : {}),
            })),
          }
        : {}),
    })
  })

  v1.post('/tokenize', json, (req, res) => {
    const body = validator.check<{ model?: string; text?: string; prompt?: string }>('tokenize', req.body)
    const m = findModel(registry, body.model)
    const tokens = m.tokenizer.enc(body.text ?? body.prompt ?? '')
    res.json({ model: m.name, tokens, count: tokens.length, strings: tokenStrings(m.tokenizer, tokens) })
  })

  v1.post('/detokenize', json, (req, res) => {
    const body = validator.check<{ model?: string; tokens: number[] }>('detokenize', req.body)
    const m = findModel(registry, body.model)
    const bad = body.tokens.findIndex((t) => t >= m.manifest.vocabSize)
    if (bad >= 0) throw new HttpError(400, `tokens[${bad}] is ${body.tokens[bad]}; the vocabulary has ${m.manifest.vocabSize} tokens`, 'tokens', 'invalid_value')
    res.json({ model: m.name, text: m.tokenizer.dec(body.tokens, { rmSpTks: true }) })
  })

  v1.use((req, res) => sendError(res, 404, `no such endpoint: ${req.method} ${req.baseUrl}${req.path}`.slice(0, 300), null, 'unknown_url'))
  app.use('/v1', v1)

  // The page's model list and the exported files, only the three a model folder has (no path from the URL
  // ever reaches the file system).
  app.get('/models/index.json', (_req, res) => {
    res.json({ models: registry.list().map((m) => ({ name: m.name, architecture: m.manifest.architecture, path: `models/${m.name}/` })) })
  })
  // The experiment's training log, for the page's training curves (written while training runs: no caching).
  app.get('/models/:name/metrics.jsonl', (req, res, next) => {
    const m = registry.get(String(req.params.name))
    const file = m && String(req.params.name) === m.name ? m.files?.metrics : undefined
    const missing = () => sendError(res, 404, `model '${String(req.params.name).slice(0, 128)}' has no metrics.jsonl`, null, 'not_found')
    if (!file) return missing()
    res.sendFile(file, { dotfiles: 'allow', headers: { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-cache' } }, (err) => {
      if (!err) return
      if (!res.headersSent && ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as { status?: number }).status === 404)) missing()
      else next(err)
    })
  })
  app.get('/models/:name/:file', (req, res) => {
    const m = registry.get(String(req.params.name))
    const files = m?.files
    const file = String(req.params.file)
    const abs = !m || !files ? undefined
      : file === 'manifest.json' ? files.manifest
      : file === m.manifest.model ? files.model
      : file === m.manifest.tokenizer ? files.tokenizer
      : undefined
    if (!abs || String(req.params.name) !== m!.name) return sendError(res, 404, 'no such model file', null, 'not_found')
    // dotfiles: the experiment folder may sit under a dot-directory; the file itself is one of the three.
    res.sendFile(abs, { dotfiles: 'allow', headers: { 'Cache-Control': 'no-cache' } })
  })

  // onnxruntime-web's runtime (.mjs glue and .wasm), served from node_modules: no CDN.
  app.use('/ort', (req, res, next) => {
    if (!/^\/ort-wasm[\w.-]*\.(mjs|wasm)$/.test(req.path)) return sendError(res, 404, 'not found', null, 'not_found')
    next()
  }, express.static(ortDir, { index: false, fallthrough: false, maxAge: '1h' }))

  app.use(express.static(webDir, { index: 'index.html', maxAge: 0 }))
  app.get('/', (_req, res) => {
    // Only reached when the page is not built.
    res.status(503).type('text/plain').send(`The web page is not built (${webDir} is missing): run npm run build:web\n`)
  })

  app.use((req, res) => sendError(res, 404, `not found: ${req.method} ${req.path}`.slice(0, 300), null, 'not_found'))
  app.use(errorHandler(log))
  return app
}

