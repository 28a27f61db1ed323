// `lmp train-model` for every architecture of MODELS, on demo and on tiny-shakespeare (a local copy),
// then `lmp eval-dset-ppl` on what it wrote; and the training options end to end: truncated BPTT, cosine
// schedule, validation with best.json (equal to eval-dset-ppl), a killed run resumed to the same losses,
// the NaN stop.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { MODELS } from '../../src/cli/model-options.ts'
import { createModel, MODEL_DEFAULTS, type ModelConfig } from '../../models/lm.ts'
import { isOneLineError, lmp, type CliResult } from '../helpers/cli.ts'
import { lmpInProcess } from '../helpers/cli-in-process.ts'

const root = t.testdir({})
const env = { LMP_EXP_DIR: root }
process.env.LMP_EXP_DIR = root
const shakespeare = fileURLToPath(new URL('../../../shared/data/tinyshakespeare/input.txt', import.meta.url))
const tiny = ['--d-emb', '8', '--d-hid', '8', '--n-blk', '4', '--d-blk', '2', '--d-model', '8', '--n-head', '2', '--d-ff', '16',
  '--batch-size', '4', '--max-seq-len', '16', '--stride', '16', '--total-step', '4', '--warmup-step', '1', '--ckpt-step', '2',
  '--log-step', '2', '--no-export']
const readMetrics = (exp: string) =>
  readFileSync(join(root, exp, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>)
const stable = (rows: Record<string, number>[]) => rows.map(({ time, tokensPerSec, ...rest }) => rest)
const ppls = (stdout: string) => [...stdout.matchAll(/^checkpoint: (\d+), ppl: ([\d.e+-]+)$/gm)].map((m) => ({ step: +m[1], ppl: +m[2] }))

const lmpHere = lmpInProcess
/** Passes when the command exited 0; shows its stderr when not. */
const ok = (t: Test, r: CliResult, what: string) => t.equal(r.status, 0, what, r.status === 0 ? {} : { stderr: r.stderr })

// lmp's aliases (Transformer-encoder) build the same model: trained once on tiny-shakespeare.
const built = (name: string) => createModel({ ...MODEL_DEFAULTS, model: name, vocabSize: 8 } as ModelConfig)
const seen = new Set<string>()

for (const name of MODELS) {
  const first = !seen.has(built(name).config.model)
  seen.add(built(name).config.model)
  t.test(`${name} trains on demo${first ? ' and on tiny-shakespeare' : ''}; eval-dset-ppl scores it`, async (t) => {
    const exp = `demo-${name}`
    const r = await lmpHere(['train-model', name, '--exp-name', exp, '--is-uncased', ...tiny])
    ok(t, r, `train-model ${name} on demo`)
    t.match(r.stdout, /^trained 4 steps: loss [\d.]+, \d+ tokens\/s/m)
    const e = await lmpHere(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', exp])
    ok(t, e, 'eval-dset-ppl')
    const got = ppls(e.stdout)
    t.same(got.map((x) => x.step), [2, 4], 'both checkpoints scored')
    t.ok(got.every((x) => x.ppl > 1 && x.ppl < 100), `perplexities ${got.map((x) => x.ppl.toFixed(2)).join(', ')}`)
    t.match(e.stdout, /^best checkpoint: \d, best ppl: [\d.]+$/m)

    if (!first) return
    const skip = existsSync(shakespeare) ? false : `no local copy of tiny-shakespeare at ${shakespeare}`
    await t.test('tiny-shakespeare', { skip }, async (t) => {
      const ts = `ts-${name}`
      const r2 = await lmpHere(['train-model', name, '--exp-name', ts, '--dset-name', 'tiny-shakespeare', '--data-path', shakespeare, ...tiny])
      ok(t, r2, `train-model ${name} on tiny-shakespeare`)
      t.match(r2.stderr, /training \S+ on tiny-shakespeare \(\d+ samples, vocabulary 6\d\)/, 'a character vocabulary')
      const e2 = await lmpHere(['eval-dset-ppl', 'tiny-shakespeare', '--ver', 'valid', '--data-path', shakespeare, '--exp-name', ts, '--first-ckpt', '-1'])
      ok(t, e2, 'eval-dset-ppl')
      const [latest] = ppls(e2.stdout)
      t.ok(latest?.step === 4 && latest.ppl > 1 && latest.ppl < 200, `tiny-shakespeare valid ppl at step 4: ${latest?.ppl}`)
    })
  })
}

t.test('training options end to end: snake_case, cosine, weight decay, validation and best.json', async (t) => {
  const help = (await lmpHere(['train-model', '--help'])).stdout
  for (const flag of ['--tbptt', '--lr-schedule <linear|cosine>', '--min-lr', '--eval-step', '--eval-ver', '--resume', '--label-smoothing', '--weight-decay']) {
    t.ok(help.includes(flag), `--help lists ${flag}`)
  }
  const r = await lmpHere(['train-model', 'LSTM-2002', '--exp-name', 'opts', '--is-uncased', ...tiny, '--total-step', '6', '--log-step', '1',
    '--lr_schedule', 'cosine', '--min_lr', '0.0001', '--weight_decay', '0.01', '--label_smoothing', '0.1', '--eval_step', '3',
    '--eval-ver', 'test', '--p-emb', '0.1'])
  ok(t, r, 'train-model with the options')
  const config = JSON.parse(readFileSync(join(root, 'opts', 'lmp_config.json'), 'utf8'))
  t.match(config.train, { lrSchedule: 'cosine', minLr: 0.0001, weightDecay: 0.01, evalStep: 3, tbptt: false })
  t.equal(config.model.labelSmoothing, 0.1)
  const rows = readMetrics('opts')
  const lrs = rows.filter((x) => 'lr' in x).map((x) => x.lr)
  t.equal(lrs.length, 6)
  const decreasing = lrs.slice(1).every((lr, i, a) => i === 0 || lr < a[i - 1])
  t.ok(lrs[0] === 0.001 && lrs[1] === 0.001 && decreasing && lrs[5] > 0.0001, `cosine from lr towards min_lr: ${lrs.join(', ')}`)
  const evals = rows.filter((x) => 'valPpl' in x)
  t.same(evals.map((x) => x.step), [3, 6])
  const best = JSON.parse(readFileSync(join(root, 'opts', 'best.json'), 'utf8'))
  t.match(r.stdout, new RegExp(`^best checkpoint: ${best.step}, valid ppl`, 'm'))
  // The perplexity measured during training (TF.js) equals eval-dset-ppl's (onnxruntime-node).
  const e = await lmpHere(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'opts', '--first-ckpt', '3', '--last-ckpt', '6'])
  ok(t, e, 'eval-dset-ppl')
  const scored = ppls(e.stdout)
  t.same(scored.map((x) => x.step), [3, 4, 6], 'the best checkpoint of step 3 was written, though ckpt_step is 2')
  for (const { step, ppl } of scored.filter((x) => x.step !== 4)) {
    const during = evals.find((x) => x.step === step)!
    t.ok(Math.abs(during.valPpl - ppl) <= 1e-5 * ppl, `step ${step}: valPpl ${during.valPpl} = eval-dset-ppl ${ppl}`)
  }
})

t.test('--tbptt from the CLI', async (t) => {
  const r = await lmpHere(['train-model', 'GRU', '--exp-name', 'tbptt', '--tbptt', '--is-uncased', ...tiny])
  ok(t, r, 'a recurrent model trains with --tbptt')
  t.equal(JSON.parse(readFileSync(join(root, 'tbptt', 'lmp_config.json'), 'utf8')).train.tbptt, true)
  const e = await lmpHere(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'tbptt', '--first-ckpt', '-1'])
  t.match(e.stdout, /^checkpoint: 4, ppl: [\d.]+$/m)
  const refused = await lmpHere(['train-model', 'Transformer', '--exp-name', 'tbptt-tr', '--tbptt', ...tiny])
  t.ok(isOneLineError(refused), refused.stderr.trim())
  t.match(refused.stderr, /--tbptt is for recurrent models, not Transformer/)
  t.notOk(existsSync(join(root, 'tbptt-tr')), 'refused before writing anything')
})

/** Start `lmp` and SIGKILL it as soon as `file` appears. */
function killWhen(args: string[], file: string): Promise<{ killed: boolean }> {
  const bin = fileURLToPath(new URL('../../bin/lmp.js', import.meta.url))
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' })
  return new Promise((resolve, reject) => {
    let killed = false
    const poll = setInterval(() => {
      if (!killed && existsSync(file)) {
        killed = child.kill('SIGKILL')
        clearInterval(poll)
      }
    }, 5)
    child.on('error', reject)
    child.on('exit', () => {
      clearInterval(poll)
      resolve({ killed })
    })
  })
}

t.test('a killed run, resumed, has the losses of an uninterrupted one', async (t) => {
  const args = (exp: string) => ['train-model', 'Transformer', '--exp-name', exp, '--is-uncased', ...tiny, '--p', '0.1',
    '--total-step', '60', '--ckpt-step', '5', '--log-step', '1', '--eval-step', '7', '--eval-ver', 'test']
  const whole = await lmpHere(args('whole'))
  ok(t, whole, 'the uninterrupted run')
  const { killed } = await killWhen(args('killed'), join(root, 'killed', 'ckpt-10.safetensors'))
  t.ok(killed, 'killed after checkpoint 10')
  t.notOk(existsSync(join(root, 'killed', 'ckpt-60.safetensors')), 'before the end')
  const resumed = await lmpHere(['train-model', 'Transformer', '--exp-name', 'killed', '--resume', '--no-export'])
  ok(t, resumed, 'the resumed run')
  t.match(resumed.stderr, /resuming Transformer from step \d+ of 60/)
  t.match(resumed.stdout, /^trained 60 steps \(from step \d+\)/m)
  t.same(stable(readMetrics('killed')), stable(readMetrics('whole')), 'the same losses, learning rates and validation at every step')
  t.equal(readFileSync(join(root, 'killed', 'best.json'), 'utf8'), readFileSync(join(root, 'whole', 'best.json'), 'utf8'), 'the same best.json')
  t.same(readFileSync(join(root, 'killed', 'ckpt-60.safetensors')), readFileSync(join(root, 'whole', 'ckpt-60.safetensors')), 'the same final weights')
  const best = JSON.parse(readFileSync(join(root, 'whole', 'best.json'), 'utf8'))
  const e = await lmpHere(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'whole', '--first-ckpt', String(best.step), '--last-ckpt', String(best.step)])
  const [scored] = ppls(e.stdout)
  t.ok(scored?.step === best.step && Math.abs(scored.ppl - best.valPpl) <= 1e-5 * best.valPpl, `Transformer: best valPpl ${best.valPpl} = eval-dset-ppl ${scored?.ppl}`)

  const again = await lmpHere(['train-model', 'Transformer', '--exp-name', 'killed', '--resume'])
  t.ok(isOneLineError(again) && /already trained to step 60/.test(again.stderr), again.stderr.trim())
  const other = await lmpHere(['train-model', 'GRU', '--exp-name', 'whole', '--resume'])
  t.ok(isOneLineError(other) && /trains Transformer, not GRU/.test(other.stderr), other.stderr.trim())
  const none = await lmpHere(['train-model', 'GRU', '--exp-name', 'nothing-here', '--resume'])
  t.ok(isOneLineError(none) && /unknown experiment 'nothing-here'/.test(none.stderr), none.stderr.trim())
})

t.test('a NaN loss stops with one line and keeps the last good checkpoint', async (t) => {
  const r = await lmpHere(['train-model', 'LSTM-2000', '--exp-name', 'nan', '--is-uncased', ...tiny, '--lr', '1e20', '--ckpt-step', '1', '--total-step', '10'])
  const lastLine = r.stderr.trim().split('\n').at(-1)!
  t.ok(r.status === 1 && lastLine.startsWith('lmp: error: ') && !/\n\s+at /.test(r.stderr), `ends with one error line: ${lastLine}`)
  const m = /loss became (?:NaN|-?Infinity) at step (\d+); stopped \(last good checkpoint: step (\d+)\)/.exec(r.stderr)
  t.ok(m, r.stderr.trim())
  const [bad, good] = [Number(m![1]), Number(m![2])]
  t.ok(existsSync(join(root, 'nan', `ckpt-${good}.safetensors`)), `checkpoint ${good} kept`)
  t.notOk(existsSync(join(root, 'nan', `ckpt-${bad}.safetensors`)), `no checkpoint ${bad}`)
  const e = await lmpHere(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'nan', '--first-ckpt', '-1'])
  t.match(e.stdout, new RegExp(`^checkpoint: ${good}, ppl: `, 'm'), 'the kept checkpoint still loads')
})
