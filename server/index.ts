// Starting and stopping the HTTP server: `lmp serve` and `lmp demo` both go through startServer.
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino, type Logger } from 'pino'
import { LmpError } from '../src/errors.ts'
import { checkDevice, executionProvidersFor, type Device } from '../src/infer/device.ts'
import { createApp, type AppOptions } from './app.ts'
import { loadExperimentModel, ModelRegistry, resolveExperimentDir } from './models.ts'
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
  apiKey?: string
  limits?: Partial<ServerLimits>
  logger?: Logger
  numThreads?: number
}

export interface RunningServer {
  url: string
  server: Server
  registry: ModelRegistry
  close(): Promise<void>
}

/**
 * Listens first (GET /health answers 503 while the models load), then loads every experiment; resolves
 * once they are all ready. A model that cannot load closes the server and rejects with its LmpError.
 */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  if (!opts.exps.length) throw new LmpError('no model to serve: give --exp NAME')
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
  const app = createApp({ models: registry, apiKey: opts.apiKey, limits: opts.limits, logger: log } satisfies AppOptions)
  const server = await listen(app, host, port)
  // Keep-alive sockets must not hold shutdown for long.
  server.keepAliveTimeout = 5_000

  const close = async () => {
    await new Promise<void>((resolve) => {
      // Stop accepting; keep-alive connections are dropped as soon as their request is done.
      const idle = setInterval(() => server.closeIdleConnections(), 50)
      const force = setTimeout(() => server.closeAllConnections(), 30_000)
      force.unref()
      server.close(() => {
        clearInterval(idle)
        clearTimeout(force)
        resolve()
      })
      server.closeIdleConnections()
    })
    await app.locals.engine.idle()
    await registry.releaseAll()
  }

  try {
    for (const t of targets) {
      // --device cuda|webgpu never falls back to the CPU: a provider that cannot load fails the start.
      const executionProviders = opts.device && opts.device !== 'cpu' ? executionProvidersFor(opts.device) : undefined
      registry.add(await loadExperimentModel(t.dir, { name: t.name, executionProviders, numThreads: opts.numThreads }))
      log.info({ model: t.name, dir: t.dir }, 'model loaded')
    }
  } catch (err) {
    await close()
    throw err
  }
  registry.ready = true

  const address = server.address() as AddressInfo
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address
  return { url: `http://${shownHost}:${address.port}/`, server, registry, close }
}

function listen(app: ReturnType<typeof createApp>, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host)
    server.once('listening', () => resolve(server))
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new LmpError(`port ${port} on ${host} is already in use (try --port 0)`))
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') reject(new LmpError(`cannot listen on host '${host}'`))
      else if (err.code === 'EACCES') reject(new LmpError(`no permission to listen on port ${port}`))
      else reject(err)
    })
  })
}
