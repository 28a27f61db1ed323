// --device on serve, gen-txt, eval-txt-ppl and eval-dset-ppl: `webgpu` runs onnxruntime-node's WebGPU
// execution provider (here on SwiftShader) and gives the CPU's text and perplexity; with no adapter
// (VK_ICD_FILENAMES pointing nowhere) each command, and train-model --backend webgpu, fails with one line
// and exit 1, never falling back to the CPU; a server reports its device in /health and /v1/models.
import t from 'tap'
import { join } from 'node:path'
import { pino } from 'pino'
import { startServer } from '../../server/index.ts'
import { isOneLineError, lmp } from '../helpers/cli.ts'
import { softwareGpuEnv, webgpuOrSkip } from '../helpers/webgpu.ts'

if (await webgpuOrSkip(t)) {
  const root = t.testdir({})
  const env = { LMP_EXP_DIR: root, ...softwareGpuEnv() }
  const trained = lmp(['train-model', 'LSTM-2000', '--exp-name', 'dev', '--total-step', '4', '--ckpt-step', '2', '--warmup-step', '1',
    '--batch-size', '8', '--max-seq-len', '32', '--stride', '32', '--d-emb', '8', '--n-blk', '4', '--is-uncased'], env)
  t.equal(trained.status, 0, trained.status === 0 ? 'a tiny LSTM-2000 trains' : trained.stderr)
  const nowhere = { ...env, VK_ICD_FILENAMES: join(root, 'no-such-icd.json') }

  t.test('gen-txt, eval-txt-ppl and eval-dset-ppl on webgpu equal cpu', async (t) => {
    const gen = (device: string) => lmp(['gen-txt', 'top-1', '--exp-name', 'dev', '--txt', 'If you add 1', '--max-new-tokens', '12', '--device', device], env)
    const [cpu, gpu] = [gen('cpu'), gen('webgpu')]
    t.equal(gpu.status, 0, gpu.stderr)
    t.equal(gpu.stdout, cpu.stdout, `greedy text: ${JSON.stringify(cpu.stdout)}`)
    const ppl = (device: string) => lmp(['eval-txt-ppl', '--exp-name', 'dev', '--txt', 'If you add 1 to 2 you get 3 .', '--device', device], env)
    const num = (s: string) => Number(/ppl: ([\d.]+)/.exec(s)?.[1])
    const [p1, p2] = [ppl('cpu'), ppl('webgpu')]
    t.equal(p2.status, 0, p2.stderr)
    t.ok(Math.abs(num(p2.stdout) - num(p1.stdout)) / num(p1.stdout) < 1e-4, `perplexity ${num(p2.stdout)} = ${num(p1.stdout)}`)
    const dset = lmp(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'dev', '--first-ckpt', '-1', '--batch-size', '128', '--device', 'webgpu'], env)
    t.equal(dset.status, 0, dset.stderr)
    t.match(dset.stdout, /^checkpoint: 4, ppl: [\d.]+$/m)
  })

  t.test('--device webgpu with no adapter: one line, exit 1, no CPU fallback', async (t) => {
    const cases = [
      ['serve', '--exp', join(root, 'dev'), '--port', '0', '--device', 'webgpu'],
      ['gen-txt', 'top-1', '--exp-name', 'dev', '--txt', 'If', '--device', 'webgpu'],
      ['eval-txt-ppl', '--exp-name', 'dev', '--device', 'webgpu'],
      ['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'dev', '--device', 'webgpu'],
    ]
    for (const args of cases) {
      const r = lmp(args, nowhere, 60_000)
      t.equal(r.status, 1, `${args[0]} exits 1`)
      t.ok(isOneLineError(r), `${args[0]}: one line: ${r.stderr}`)
      t.match(r.stderr, /--device webgpu: onnxruntime-node's WebGPU execution provider cannot start \(Failed to get a WebGPU adapter.*\); it needs a GPU driver with Vulkan/)
      t.equal(r.stdout, '', 'nothing served, generated or scored')
    }
  })

  t.test('train-model --backend webgpu with no adapter: one line, exit 1, no other backend', async (t) => {
    const r = lmp(['train-model', 'LSTM-2000', '--exp-name', 'nogpu', '--total-step', '1', '--warmup-step', '1', '--backend', 'webgpu'], nowhere, 60_000)
    t.equal(r.status, 1)
    t.ok(isOneLineError(r), `one line: ${r.stderr}`)
    t.match(r.stderr, /^lmp: error: --backend webgpu: no WebGPU adapter: WebGPU needs a GPU driver with Vulkan/)
    t.notMatch(r.stdout, /trained/, 'nothing trained on another backend')
  })

  t.test('a server on webgpu says so in /health and /v1/models', async (t) => {
    const server = await startServer({ exps: [join(root, 'dev')], port: 0, device: 'webgpu', logger: pino({ level: 'silent' }) })
    t.teardown(() => server.close())
    const health = await (await fetch(server.url + 'health')).json()
    t.same(health, { status: 'ok', models: ['dev'], device: 'webgpu' })
    const models = await (await fetch(server.url + 'v1/models')).json()
    t.equal(models.data[0].device, 'webgpu')
    const res = await fetch(server.url + 'v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'dev', prompt: 'If you add 1', max_tokens: 12, temperature: 0 }) })
    const text = (await res.json()).choices[0].text
    t.equal(text + '\n', lmp(['gen-txt', 'top-1', '--exp-name', 'dev', '--txt', 'If you add 1', '--max-new-tokens', '12'], env).stdout, 'the CPU\'s greedy text')
  })
}
