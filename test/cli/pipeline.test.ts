// End to end through the CLI on the demo data: train → export → eval-dset-ppl → eval-txt-ppl → gen-txt,
// and the one-line errors a user gets for bad input.
import t from 'tap'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { isOneLineError, lmp } from '../helpers/cli.ts'

const root = t.testdir({})
const env = { LMP_EXP_DIR: root }
const small = ['--exp-name', 'e2e', '--total-step', '20', '--ckpt-step', '10', '--warmup-step', '5', '--batch-size', '16',
  '--max-seq-len', '40', '--stride', '40', '--d-emb', '16', '--n-blk', '16', '--lr', '0.01', '--is-uncased']

t.test('train-model writes checkpoints, config, tokenizer, metrics and the ONNX export', async (t) => {
  const r = lmp(['train-model', 'LSTM-2000', ...small], env)
  t.equal(r.status, 0, r.stderr)
  t.match(r.stderr, /backend 'wasm \(\d+ threads?\)'/, 'the chosen backend is printed')
  t.match(r.stdout, /trained 20 steps: loss [\d.]+, \d+ tokens\/s \(wasm\)/)
  const dir = join(root, 'e2e')
  for (const f of ['lmp_config.json', 'lmp_tokenizer.json', 'ckpt-10.safetensors', 'ckpt-20.safetensors', 'ckpt-20.optim.safetensors',
    'metrics.jsonl', 'onnx/model.onnx', 'onnx/manifest.json', 'onnx/lmp_tokenizer.json']) {
    t.ok(existsSync(join(dir, f)), f)
  }
  // Hugging Face's model files are for Transformers (transformers.js has no class for our recurrent models).
  for (const f of ['config.json', 'generation_config.json', 'onnx/tokenizer.json']) t.notOk(existsSync(join(dir, f)), `no ${f}`)
  const manifest = JSON.parse(readFileSync(join(dir, 'onnx/manifest.json'), 'utf8'))
  t.equal(manifest.opset, 17)
  t.equal(manifest.irVersion, 8)
  t.same(manifest.inputs.map((i: any) => i.name), ['input_ids', 'state_in.0.h', 'state_in.0.c'])
  t.same(manifest.outputs.map((o: any) => o.name), ['logits', 'state_out.0.h', 'state_out.0.c'])
  t.notOk(readdirSync(dir).some((f) => f.includes('.tmp')), 'no temp files left behind')
})

t.test('eval-dset-ppl prints every checkpoint and the best', async (t) => {
  const r = lmp(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'e2e'], env)
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^checkpoint: 10, ppl: [\d.]+$/m)
  t.match(r.stdout, /^checkpoint: 20, ppl: [\d.]+$/m)
  t.match(r.stdout, /^best checkpoint: \d+, best ppl: [\d.]+$/m)
  const latest = lmp(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'e2e', '--first-ckpt', '-1'], env)
  t.match(latest.stdout, /^checkpoint: 20, ppl: /m)
  t.notMatch(latest.stdout, /checkpoint: 10/)
})

t.test('eval-txt-ppl and gen-txt', async (t) => {
  const ppl = lmp(['eval-txt-ppl', '--exp-name', 'e2e', '--txt', 'If you add 1 to 2 you get 3 .'], env)
  t.equal(ppl.status, 0, ppl.stderr)
  t.match(ppl.stdout, /^ppl: [\d.]+ \([\d.]+ nats\/token, [\d.]+ bits\/token, 30 tokens\)$/m)
  const greedy = lmp(['gen-txt', 'top-1', '--exp-name', 'e2e', '--txt', 'If you add 1'], env)
  t.equal(greedy.status, 0, greedy.stderr)
  t.equal(lmp(['gen-txt', 'top-1', '--exp-name', 'e2e', '--txt', 'If you add 1'], env).stdout, greedy.stdout, 'greedy is deterministic')
  const a = lmp(['gen-txt', 'top-K', '--k', '5', '--seed', '3', '--exp-name', 'e2e', '--txt', 'If'], env)
  const b = lmp(['gen-txt', 'top-K', '--k', '5', '--seed', '3', '--exp-name', 'e2e', '--txt', 'If'], env)
  t.equal(a.status, 0, a.stderr)
  t.equal(a.stdout, b.stdout, 'the same seed gives the same text')
})

t.test('bad input: one line on stderr, non-zero exit, no stack trace', async (t) => {
  const dir = join(root, 'e2e')
  const cases: [string, string[], RegExp][] = [
    ['unknown experiment', ['gen-txt', 'top-1', '--exp-name', 'nope'], /unknown experiment 'nope'/],
    ['missing checkpoint', ['eval-txt-ppl', '--exp-name', 'e2e', '--ckpt', '999'], /missing checkpoint 999/],
    ['unknown flag', ['gen-txt', 'top-1', '--exp-name', 'e2e', '--bogus', '1'], /unknown option --bogus/],
    ['unknown command', ['frobnicate'], /unknown command/],
    ['bad number', ['train-model', 'LSTM-2000', '--lr', 'fast'], /--lr must be a number/],
    ['bad method', ['gen-txt', 'top-Q'], /must be one of top-1, top-K, top-P/],
    ['path in experiment name', ['gen-txt', 'top-1', '--exp-name', '../etc'], /invalid experiment name/],
  ]
  writeFileSync(join(root, 'empty.txt'), '')
  cases.push(['empty text file', ['train-model', 'LSTM-2000', '--exp-name', 'empty', '--dset-name', 'text', '--data-path', join(root, 'empty.txt')], /has no text to train on/])
  for (const [what, args, message] of cases) {
    const r = lmp(args, env)
    t.ok(isOneLineError(r), `${what}: ${JSON.stringify(r.stderr)}`)
    t.match(r.stderr, message, what)
  }
  t.notOk(existsSync(join(root, 'empty')), 'a failed start leaves no experiment folder')

  // A corrupt checkpoint (a copy of the experiment with a damaged safetensors file).
  const bad = join(root, 'bad-ckpt')
  mkdirSync(bad)
  for (const f of ['lmp_config.json', 'lmp_tokenizer.json']) copyFileSync(join(dir, f), join(bad, f))
  writeFileSync(join(bad, 'ckpt-5.safetensors'), Buffer.from('\x10\x00\x00\x00\x00\x00\x00\x00{"a": garbage...'))
  const r1 = lmp(['eval-txt-ppl', '--exp-name', 'bad-ckpt'], env)
  t.ok(isOneLineError(r1), `corrupt safetensors: ${JSON.stringify(r1.stderr)}`)
  t.match(r1.stderr, /corrupt safetensors file/)
  const r1b = lmp(['export-onnx', '--exp-name', 'bad-ckpt'], env)
  t.ok(isOneLineError(r1b), 'export of a corrupt checkpoint')

  // A corrupt ONNX file (truncated), served from the export.
  const served = join(root, 'bad-onnx')
  mkdirSync(join(served, 'onnx'), { recursive: true })
  for (const f of ['lmp_config.json', 'lmp_tokenizer.json', 'ckpt-20.safetensors']) copyFileSync(join(dir, f), join(served, f))
  for (const f of ['manifest.json', 'lmp_tokenizer.json']) copyFileSync(join(dir, 'onnx', f), join(served, 'onnx', f))
  writeFileSync(join(served, 'onnx', 'model.onnx'), readFileSync(join(dir, 'onnx', 'model.onnx')).subarray(0, 500))
  const r2 = lmp(['gen-txt', 'top-1', '--exp-name', 'bad-onnx'], env)
  t.ok(isOneLineError(r2), `corrupt ONNX: ${JSON.stringify(r2.stderr)}`)
  t.match(r2.stderr, /corrupt ONNX/)
})

t.test('--help on every command', async (t) => {
  const all = lmp(['--help'])
  t.equal(all.status, 0)
  const names = [...all.stdout.matchAll(/^  ([a-z-]+) /gm)].map((m) => m[1])
  t.ok(names.length >= 10, `commands listed: ${names.join(', ')}`)
  for (const name of names) {
    const r = lmp([name, '--help'])
    t.equal(r.status, 0, `${name} --help`)
    t.match(r.stdout, new RegExp(`^Usage: lmp ${name}`), `${name} --help shows usage`)
  }
})
