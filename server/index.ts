// Starting and stopping the HTTP server: `lmp serve` and `lmp demo` both go through startServer.
import type { AddressInfo } from 'node:net'
import { pino, type Logger } from 'pino'
import { LmpError } from '../src/errors.ts'
import { modelChatTemplate } from './chat.ts'
import { checkDevice, executionProvidersFor, type Device } from '../src/infer/device.ts'
import { createApp, type AppOptions } from './app.ts'
import { createHttpServer, type ConnectionLimits, type HttpServer } from './connections.ts'
import { loadExperimentModel, ModelRegistry, resolveExperimentDir } from './models.ts'
import { isLoopback } from './security.ts'
import type { ServerLimits } from './validation.ts'

export { createApp, type AppOptions } from './app.ts'
export { loadExperimentModel, ModelRegistry, type ServedModel } from './models.ts'

export interface StartOptions {
  /** Experiment names (exp/NAME) or folder paths. */
  exps: string[]
  host?: string
  port?: number
  /** Folder that holds the experiments (default exp/ in the working directory). */
  expRoot?: string
  /** onnxruntime-node's execution provider (default cpu); one that cannot start fails the start. */
  device?: Device
  /** Bearer token for /v1/*, /metrics and /models/*; an empty string is refused (it would turn auth off). */
  apiKey?: string
  limits?: Partial<ServerLimits>
  /** Bytes of large JSON answers held at once for clients that have not read them (default 64 MiB). */
  answerBufferBytes?: number
  /** Socket timeouts (server/connections.ts). */
  connections?: Partial<ConnectionLimits>
  logger?: Logger
  numThreads?: number
  /** Origins allowed to call /v1/* from a browser (CORS); none by default. */
  cors?: string[]
}

export interface RunningServer {
  /** The address the server is bound to, as a URL: http://0.0.0.0:PORT/ when it listens on every interface. */
  url: string
  /** Set when the server can be reached from other machines without a key (a non-loopback --host). */
  warning?: string
  server: HttpServer
  registry: ModelRegistry
  close(): Promise<void>
}

/**
 * Listens first (GET /health answers 503 while the models load), then loads every experiment; resolves
 * once they are all ready. A model that cannot load closes the server and rejects with its LmpError.
 */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  if (!opts.exps.length) throw new LmpError('no model to serve: give --exp NAME')
  if (opts.apiKey === '') throw new LmpError('the API key is empty (--api-key or LMP_API_KEY): give a key, or none to serve without auth')
  const host = opts.host ?? '127.0.0.1'
  const port = opts.port ?? 8080
  const log = opts.logger ?? pino({ level: process.env.LMP_LOG_LEVEL ?? 'info' })
  const targets = opts.exps.map((e) => resolveExperimentDir(e, opts.expRoot))
  const names = new Set<string>()
  for (const t of targets) {
    if (names.has(t.name)) throw new LmpError(`model '${t.name}' is given twice`)
    names.add(t.name)
  }

  // Before listening: a device that cannot start is one line and no server.
  await checkDevice(opts.device ?? 'cpu')
  const registry = new ModelRegistry([], false)
  const app = createApp({ models: registry, apiKey: opts.apiKey, host, limits: opts.limits, answerBufferBytes: opts.answerBufferBytes, logger: log, cors: opts.cors } satisfies AppOptions)
  const server = await listen(createHttpServer(app, opts.connections), host, port)
  app.locals.closing = () => server.closing

  const close = async () => {
    await server.shutdown()
    await app.locals.engine.idle()
    await registry.releaseAll()
  }

  try {
    for (const t of targets) {
      // --device cuda|webgpu never falls back to the CPU: a provider that cannot load fails the start.
      const executionProviders = opts.device && opts.device !== 'cpu' ? executionProvidersFor(opts.device) : undefined
      const model = await loadExperimentModel(t.dir, { name: t.name, executionProviders, numThreads: opts.numThreads })
      registry.add(model)
      // A broken chat template is the model's fault, not a request's: refuse at start, not with a 500 per chat.
      try {
        modelChatTemplate(model)
      } catch (err) {
        throw new LmpError((err as Error).message)
      }
      log.info({ model: t.name, dir: t.dir }, 'model loaded')
    }
  } catch (err) {
    await close()
    throw err
  }
  registry.ready = true

  const address = server.address() as AddressInfo
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${shownHost}:${address.port}/`
  let warning: string | undefined
  if (!isLoopback(address.address) && !opts.apiKey) {
    warning = `listening on ${address.address} without an API key: anyone who can reach this machine can use the server and download its models (give --api-key, or --host 127.0.0.1)`
    log.warn({ host: address.address }, warning)
  }
  return { url, warning, server, registry, close }
}

function listen(server: HttpServer, host: string, port: number): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    server.listen(port, host)
    server.once('listening', () => resolve(server))
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new LmpError(`port ${port} on ${host} is already in use (try --port 0)`))
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') reject(new LmpError(`cannot listen on host '${host}'`))
      else if (err.code === 'EACCES') reject(new LmpError(`no permission to listen on port ${port}`))
      else reject(err)
    })
  })
}
