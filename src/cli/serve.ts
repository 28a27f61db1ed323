// `lmp serve --exp NAME [--exp NAME2 ...]`: the HTTP server and the web page for exported models.
import type { Command } from './index.ts'
import { UsageError } from './args.ts'
import { expRoot } from '../exp.ts'
import { DEVICES, type Device } from '../infer/device.ts'

export const command: Command = {
  spec: {
    name: 'serve',
    summary: 'Serve exported models over HTTP (OpenAI-style /v1/completions) and the web page at /.',
    options: {
      exp: { type: 'string[]', help: 'experiment to serve: a name under --exp-root, or a folder path (repeatable)' },
      'exp-root': { type: 'string', help: 'folder holding the experiments (default: $LMP_EXP_DIR, else ./exp)' },
      host: { type: 'string', default: '127.0.0.1', help: 'address to bind (0.0.0.0 exposes it to the network: give --api-key)' },
      port: { type: 'int', default: 8080, min: 0, max: 65535, help: 'port (0 picks a free one)' },
      device: { type: 'string', default: 'cpu', choices: DEVICES, help: 'onnxruntime-node execution provider (webgpu: any Vulkan/Metal/D3D12 GPU; cuda: see the README)' },
      'api-key': { type: 'string', help: 'require Authorization: Bearer KEY on /v1/*, /metrics and /models/* (default: $LMP_API_KEY; empty is refused)' },
      threads: { type: 'int', min: 0, max: 256, help: 'onnxruntime intra-op threads (default: 1 for a model under 16 MB, else onnxruntime picks)' },
      cors: { type: 'string[]', help: "let browser apps on this origin call /v1/* (CORS), e.g. https://app.example; '*' for any (repeatable; off by default)" },
      'idle-timeout-ms': { type: 'int', default: 30_000, min: 100, max: 3_600_000, help: 'a client whose request has not fully arrived after this long, or that reads nothing of its answer for this long, is disconnected' },
      'answer-buffer-mib': { type: 'int', default: 64, min: 1, max: 65_536, help: 'MiB of large JSON answers held at once for clients that have not read them; beyond that such an answer is a 503' },
      'stream-flush-ms': { type: 'int', default: 10, min: 0, max: 1000, help: 'streamed tokens that come faster are written together, at most once per this many ms (0: each at once)' },
    },
  },
  async run(args) {
    const o = args.options
    if (!o.exp.length) throw new UsageError("'serve' needs --exp NAME (see lmp serve --help)")
    for (const origin of o.cors ?? []) {
      if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) throw new UsageError(`--cors must be an origin like https://app.example:8443 or '*', got '${origin}'`)
    }
    const apiKey = o.apiKey ?? process.env.LMP_API_KEY
    // An empty key would silently mean "no auth": refuse it.
    if (apiKey === '') throw new UsageError(`${o.apiKey === '' ? '--api-key' : 'LMP_API_KEY'} is empty: give a key, or leave it unset to serve without auth`)
    const { startServer } = await import('../../server/index.ts')
    const running = await startServer({
      exps: o.exp,
      expRoot: o.expRoot ?? expRoot(),
      host: o.host,
      port: o.port,
      device: o.device as Device,
      apiKey,
      numThreads: o.threads || undefined,
      limits: { streamFlushMs: o.streamFlushMs },
      cors: o.cors?.length ? o.cors : undefined,
      answerBufferBytes: o.answerBufferMib * 1024 * 1024,
      connections: { idleTimeoutMs: o.idleTimeoutMs, requestTimeoutMs: o.idleTimeoutMs },
    })
    if (running.warning) process.stderr.write(`lmp: warning: ${running.warning}\n`)
    process.stdout.write(`lmp: serving ${running.registry.list().map((m) => m.name).join(', ')} at ${running.url}\n`)
    // Graceful shutdown: stop accepting, let in-flight requests finish, then exit.
    await new Promise<void>((resolve) => {
      let closing = false
      const stop = (signal: string) => {
        if (closing) {
          process.stderr.write(`lmp: ${signal} again, exiting now\n`)
          process.exit(1)
        }
        closing = true
        process.stderr.write(`lmp: ${signal}: finishing requests in flight, then exiting\n`)
        running.close().then(resolve, resolve)
      }
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.on('SIGINT', () => stop('SIGINT'))
    })
  },
}
