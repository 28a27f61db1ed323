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
      host: { type: 'string', default: '127.0.0.1', help: 'address to bind (0.0.0.0 exposes it to the network)' },
      port: { type: 'int', default: 8080, min: 0, max: 65535, help: 'port (0 picks a free one)' },
      device: { type: 'string', default: 'cpu', choices: DEVICES, help: 'onnxruntime-node execution provider (webgpu: any Vulkan/Metal/D3D12 GPU; cuda: see the README)' },
      'api-key': { type: 'string', help: 'require Authorization: Bearer KEY on /v1/* and /metrics (default: $LMP_API_KEY)' },
      threads: { type: 'int', min: 0, max: 256, help: 'onnxruntime intra-op threads (default: 1 for a model under 16 MB, else onnxruntime picks)' },
      'stream-flush-ms': { type: 'int', default: 10, min: 0, max: 1000, help: 'streamed tokens that come faster are written together, at most once per this many ms (0: each at once)' },
    },
  },
  async run(args) {
    const o = args.options
    if (!o.exp.length) throw new UsageError("'serve' needs --exp NAME (see lmp serve --help)")
    const { startServer } = await import('../../server/index.ts')
    const running = await startServer({
      exps: o.exp,
      expRoot: o.expRoot ?? expRoot(),
      host: o.host,
      port: o.port,
      device: o.device as Device,
      apiKey: o.apiKey ?? process.env.LMP_API_KEY ?? undefined,
      numThreads: o.threads || undefined,
      limits: { streamFlushMs: o.streamFlushMs },
    })
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
