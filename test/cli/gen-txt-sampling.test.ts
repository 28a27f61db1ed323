// `lmp gen-txt` shares src/infer's sampling and stop strings with the server (issue 13): a tiny temperature
// is greedy (fault 5), and nothing of a stop string is printed (fault 6; the half-character case is in
// test/infer/generate.test.ts and over HTTP in test/server/openai-api.test.ts).
import t from 'tap'
import { lmp } from '../helpers/cli.ts'

const root = t.testdir({})
const env = { LMP_EXP_DIR: root }
// Twenty steps: several tokens have positive logits, so a temperature that overflowed them to +Infinity
// would sample among them.
const train = lmp(['train-model', 'LSTM-2000', '--exp-name', 'tiny', '--total-step', '20', '--ckpt-step', '20', '--warmup-step', '5',
  '--batch-size', '16', '--max-seq-len', '40', '--stride', '40', '--d-emb', '16', '--n-blk', '16', '--lr', '0.01'], env)
t.equal(train.status, 0, train.status === 0 ? 'trained' : train.stderr)
const gen = (...args: string[]) => lmp(['gen-txt', ...args, '--exp-name', 'tiny', '--txt', 'If you add 3 to 4 you get'], env)

t.test('fault 5: a tiny temperature gives the greedy text', async (t) => {
  const greedy = gen('top-1', '--max-new-tokens', '12')
  t.equal(greedy.status, 0, greedy.stderr)
  for (const temperature of ['1e-39']) {
    const tiny = gen('top-K', '--k', '1000', '--temperature', temperature, '--seed', '2', '--max-new-tokens', '12')
    t.equal(tiny.status, 0, tiny.stderr)
    t.equal(tiny.stdout, greedy.stdout, `temperature ${temperature}`)
  }
})

t.test('fault 6: --stop cuts before the stop string, none of it printed', async (t) => {
  const sampled = gen('top-K', '--k', '1000', '--seed', '3', '--max-new-tokens', '20').stdout.replace(/\n$/, '')
  t.ok(sampled.length >= 4, `a sampled text to cut (${JSON.stringify(sampled)})`)
  for (const at of [2, sampled.length - 2]) {
    const stop = sampled.slice(at, at + 2)
    const cut = gen('top-K', '--k', '1000', '--seed', '3', '--max-new-tokens', '20', '--stop', stop)
    t.equal(cut.status, 0, cut.stderr)
    t.equal(cut.stdout, sampled.slice(0, sampled.indexOf(stop)) + '\n', `--stop ${JSON.stringify(stop)}`)
  }
})
