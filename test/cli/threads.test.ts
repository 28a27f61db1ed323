// `--threads`: TF.js's wasm backend on several cores (models/backend.ts, models/wasm-pthread-worker.cjs).
// XNNPACK splits each product's output between threads, so any number of threads trains the same weights,
// byte for byte; the process must still end by itself (the thread pool's workers must not hold it open).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isOneLineError, lmp } from '../helpers/cli.ts'

const root = t.testdir({})
const env = { LMP_EXP_DIR: root }
const common = ['--dset-name', 'demo', '--total-step', '6', '--ckpt-step', '6', '--batch-size', '16', '--max-seq-len', '32',
  '--backend', 'wasm', '--no-export']
const models: Record<string, string[]> = {
  Transformer: ['--n-lyr', '2', '--d-model', '64', '--n-head', '4', '--d-ff', '256'],
  // The fused LSTM cell reads and writes the wasm heap from JavaScript: shared memory when threaded.
  'LSTM-2000': ['--d-emb', '32', '--n-blk', '64'],
}

for (const [model, sizes] of Object.entries(models)) {
  t.test(`${model}: 1 and 2 threads train the same weights`, async (t) => {
    const ckpt: Buffer[] = []
    for (const threads of [1, 2]) {
      const name = `${model}-${threads}`
      // The timeout catches a process that trains and then never ends.
      const r = lmp(['train-model', model, '--exp-name', name, '--threads', String(threads), ...common, ...sizes], env, 120_000)
      t.equal(r.status, 0, r.stderr)
      t.match(r.stderr, threads === 1 ? /backend 'wasm \(1 thread\)'/ : /backend 'wasm \(2 threads\)'/, 'the thread count is printed')
      ckpt.push(readFileSync(join(root, name, 'ckpt-6.safetensors')))
    }
    t.ok(ckpt[0].equals(ckpt[1]), 'the checkpoints are byte-identical')
  })
}

t.test('bad --threads: one line, exit 1', async (t) => {
  for (const [args, message] of [
    [['--threads', '0'], /--threads/],
    [['--threads', '9'], /--threads/],
    [['--threads', '2', '--backend', 'cpu'], /--threads is for the wasm backend/],
  ] as const) {
    const r = lmp(['train-model', 'Transformer', '--exp-name', 'bad', '--dset-name', 'demo', '--total-step', '1', ...args], env)
    t.ok(isOneLineError(r), r.stderr)
    t.match(r.stderr, message)
  }
  // --resume takes the backend from the command line too: the same check.
  const r = lmp(['train-model', 'Transformer', '--exp-name', 'Transformer-1', '--resume', '--threads', '2', '--backend', 'cpu'], env)
  t.ok(isOneLineError(r), r.stderr)
  t.match(r.stderr, /--threads is for the wasm backend, not --backend cpu/)
})
