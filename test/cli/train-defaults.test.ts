// `lmp train-model` defaults that hold at any length (issue 15, item 5): a run shorter than the old fixed
// warmup of 1,000 steps, a context shorter than the old fixed stride of 32; and `--task nanogpt` from the
// command line (a local text file), with its one-line errors.
import t from 'tap'
import { lmpInProcess } from '../helpers/cli-in-process.ts'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isOneLineError, type CliResult } from '../helpers/cli.ts'

const root = t.testdir({})
process.env.LMP_EXP_DIR = root
const tiny = ['--d-model', '8', '--n-head', '2', '--d-ff', '16', '--n-lyr', '1', '--batch-size', '4', '--log-step', '1', '--no-export']

const lmpHere = lmpInProcess
const config = (exp: string) => JSON.parse(readFileSync(join(root, exp, 'lmp_config.json'), 'utf8'))

t.test('the defaults work at any --total-step and --max-seq-len', async (t) => {
  const r = await lmpHere(['train-model', 'Transformer', '--exp-name', 'short', '--total-step', '3', ...tiny])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^trained 3 steps/m)
  t.equal(config('short').train.warmupStep, 1, 'warmup: a tenth of 3 steps, at least 1')
  const ctx = await lmpHere(['train-model', 'Transformer', '--exp-name', 'ctx', '--total-step', '2', '--max-seq-len', '8', ...tiny])
  t.equal(ctx.status, 0, ctx.stderr)
  t.equal(config('ctx').train.stride, 8, 'stride: the window length')
  const long = await lmpHere(['train-model', 'Transformer', '--exp-name', 'long', '--total-step', '30', '--max-seq-len', '8', '--help'])
  t.match(long.stdout, /--warmup-step.*a tenth of --total-step/s, '--help says what the default is')
})

t.test('lmp demo works at any --total-step (its warmup was a fixed 100 steps)', async (t) => {
  const r = await lmpHere(['demo', '--exp-name', 'demo-short', '--total-step', '5', '--d-model', '16', '--no-serve'])
  t.equal(r.status, 0, r.stderr)
  t.equal(config('demo-short').train.warmupStep, 1, 'warmup: a sixteenth of 5 steps, at least 1')
  t.match(r.stdout, /^test: accuracy [\d.]+% /m, 'it ran to the end')
  const help = await lmpHere(['demo', '--help'])
  t.match(help.stdout, /--warmup-step.*a sixteenth of --total-step/s)
})

t.test('explicit values are still checked', async (t) => {
  const r = await lmpHere(['train-model', 'Transformer', '--exp-name', 'bad', '--total-step', '3', '--warmup-step', '5', ...tiny])
  t.ok(isOneLineError(r), r.stderr)
  t.match(r.stderr, /--warmup-step \(5\) must be <= --total-step \(3\)/, 'names the flags a user types')
  const s = await lmpHere(['train-model', 'Transformer', '--exp-name', 'bad', '--max-seq-len', '8', '--stride', '9', ...tiny])
  t.ok(isOneLineError(s), s.stderr)
})

t.test('--task nanogpt on a local text file', async (t) => {
  const dir = t.testdir({})
  const text = 'KING:\nWhat say you?\n\nQUEEN:\nNothing,  my lord.\n'.repeat(40)
  writeFileSync(join(dir, 'train.txt'), text)
  writeFileSync(join(dir, 'valid.txt'), text.slice(0, 400))
  const r = await lmpHere(['train-model', 'Transformer', '--exp-name', 'nano', '--task', 'nanogpt', '--dset-name', 'text', '--data-path', dir,
    '--total-step', '4', '--max-seq-len', '16', '--eval-step', '2', '--eval-iters', '3', ...tiny])
  t.equal(r.status, 0, r.stderr)
  const tk = JSON.parse(readFileSync(join(root, 'nano', 'lmp_tokenizer.json'), 'utf8'))
  t.equal(tk.is_raw, true)
  t.equal(Object.keys(tk.tk2id).length - 4, new Set(text).size, 'one id per distinct character of the raw text (newline included)')
  t.ok('\n' in tk.tk2id)
  const c = config('nano')
  t.equal(c.train.randomWindows, true)
  t.equal(c.train.evalIters, 3)
  const evals = readFileSync(join(root, 'nano', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => 'valLoss' in x)
  t.same(evals.map((x) => x.step), [2, 4])
  t.ok(evals.every((x) => Number.isFinite(x.valLossEstimate)), 'the estimate beside the full pass')
  const bad = await lmpHere(['train-model', 'Transformer', '--exp-name', 'nano2', '--task', 'nanogpt', '--dset-name', 'text', '--data-path', dir, '--tknzr', 'whitespace', ...tiny])
  t.ok(isOneLineError(bad), bad.stderr)
  t.match(bad.stderr, /--task nanogpt has its own vocabulary/)
  const both = await lmpHere(['train-model', 'LSTM-2000', '--exp-name', 'nano3', '--task', 'nanogpt', '--tbptt', '--dset-name', 'text', '--data-path', dir, ...tiny])
  t.ok(isOneLineError(both), both.stderr)
})
