// Issue 14, items 1-6: an experiment folder is never destroyed or corrupted. A re-run does not wipe a trained
// experiment; one writer at a time (a lock that a killed process does not keep); rewrites go through a temp
// file and a rename, appended lines are whole or absent, a killed writer's temp files are removed; a full
// disk is one line naming the file, the last complete checkpoint intact; non-finite weights are refused
// naming the tensor; a manifest that does not describe its graph is refused. Through `lmp`'s main in this
// process (one TF.js start-up), and real `lmp` processes for the race and for serve.
import t from 'tap'
import { lmpInProcess } from '../helpers/cli-in-process.ts'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isOneLineError, lmp as cli, type CliResult } from '../helpers/cli.ts'
import { diskFull } from '../helpers/disk-full.ts'

const root = t.testdir({})
const env = { LMP_EXP_DIR: root }
process.env.LMP_EXP_DIR = root
const bin = fileURLToPath(new URL('../../bin/lmp.js', import.meta.url))
const tiny = ['--is-uncased', '--d-emb', '8', '--n-blk', '4', '--d-blk', '2', '--batch-size', '4', '--max-seq-len', '16', '--stride', '16',
  '--warmup-step', '1', '--ckpt-step', '2', '--log-step', '1']
const train = (exp: string, ...more: string[]) => ['train-model', 'LSTM-2000', '--exp-name', exp, ...tiny, '--total-step', '6', ...more]

const lmp = lmpInProcess

/** `lmp ARGS` with the disk full for paths that match `pattern` (test/helpers/disk-full.ts). */
async function lmpDiskFull(pattern: RegExp, args: string[]): Promise<CliResult> {
  const restore = diskFull(pattern)
  try {
    return await lmp(args)
  } finally {
    restore()
  }
}

/** Every file under `dir` with its bytes (dot files too). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, f)
    if (statSync(p).isFile()) out[f] = readFileSync(p).toString('base64')
  }
  return out
}

/** A copy of experiment `from` named `to`, without the files `drop` matches. */
function copyExp(from: string, to: string, drop?: RegExp): string {
  const dir = join(root, to)
  cpSync(join(root, from), dir, { recursive: true, filter: (src) => !drop || !drop.test(src.slice(join(root, from).length)) })
  return dir
}

/** A failure that ends with one `lmp: error:` line (after a training run's start line and progress bar). */
function endsWithOneError(r: CliResult): boolean {
  const lines = r.stderr.trim().split('\n')
  return r.status === 1 && lines.at(-1)!.startsWith('lmp: error: ') && !/\n\s+at /.test(r.stderr) && !lines.slice(0, -1).some((l) => /error/i.test(l))
}

const metricsLines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l !== '')

// The trained experiment the tests work on: checkpoints 2, 4 and 6, metrics, the ONNX export.
const base = await lmp(train('base'))
t.equal(base.status, 0, base.stderr)
const baseDir = join(root, 'base')

t.test('1. a new run never wipes an existing experiment unless --overwrite', async (t) => {
  const before = snapshot(baseDir)
  const r = await lmp(train('base'))
  t.ok(isOneLineError(r), r.stderr.trim())
  t.match(r.stderr, /experiment 'base' already exists .*--resume.*--overwrite/, 'names both ways on')
  t.same(snapshot(baseDir), before, 'nothing deleted or changed')

  // A folder that holds only a tokenizer (lmp train-tknzr) is not replaced either, nor one of the old
  // layout (lmp's tokenizer as tokenizer.json).
  for (const [exp, file] of [['tok-only', 'lmp_tokenizer.json'], ['tok-only-old', 'tokenizer.json']]) {
    mkdirSync(join(root, exp))
    writeFileSync(join(root, exp, file), readFileSync(join(baseDir, 'lmp_tokenizer.json')))
    const tok = await lmp(train(exp))
    t.ok(isOneLineError(tok) && /already exists .*a tokenizer/.test(tok.stderr), tok.stderr.trim())
  }

  const both = await lmp([...train('base'), '--resume', '--overwrite'])
  t.ok(isOneLineError(both) && /give one of them/.test(both.stderr), both.stderr.trim())

  // --resume with an option changed would ignore it: refused, naming each one; the same values are fine.
  const longer = await lmp([...train('base', '--lr', '0.5'), '--total-step', '12', '--resume'])
  t.ok(isOneLineError(longer), longer.stderr)
  t.match(longer.stderr, /--resume continues with the options saved in .*lmp_config\.json, and .*: drop them/)
  t.match(longer.stderr, /--lr 0\.5 is not the saved 0\.001/)
  t.match(longer.stderr, /--total-step 12 is not the saved 6/)
  const same = await lmp([...train('base'), '--resume'])
  t.ok(isOneLineError(same) && /already trained to step 6/.test(same.stderr), same.stderr.trim())

  // --overwrite deletes the old run (not other files) and trains anew.
  const dir = copyExp('base', 'again')
  writeFileSync(join(dir, 'notes.txt'), 'mine')
  const again = await lmp([...train('again', '--overwrite', '--no-export'), '--total-step', '2'])
  t.equal(again.status, 0, again.stderr)
  t.same(readdirSync(dir).filter((f) => !f.startsWith('.')).sort(),
    ['ckpt-2.optim.safetensors', 'ckpt-2.safetensors', 'lmp_config.json', 'lmp_tokenizer.json', 'metrics.jsonl', 'notes.txt', 'tokenizer.json', 'tokenizer_config.json'],
    'the old checkpoints, metrics and export are gone; notes.txt is kept')
  t.equal(metricsLines(dir).length, 2, 'a new log')
})

t.test('1b. train-tknzr never replaces a trained run or a tokenizer unless --overwrite', async (t) => {
  // Found by a new user: train-tknzr over a trained experiment replaced its tokenizer and config, and the
  // checkpoints no longer loaded.
  const dir = copyExp('base', 'tk-over')
  const before = snapshot(dir)
  const r = await lmp(['train-tknzr', 'whitespace', '--exp-name', 'tk-over'])
  t.ok(isOneLineError(r), r.stderr.trim())
  t.match(r.stderr, /experiment 'tk-over' already exists .*files of a run.*--overwrite/)
  t.same(snapshot(dir), before, 'nothing deleted or changed')

  t.equal((await lmp(['train-tknzr', 'character', '--exp-name', 'tk-twice'])).status, 0)
  const tokenizer = readFileSync(join(root, 'tk-twice', 'lmp_tokenizer.json'), 'utf8')
  const twice = await lmp(['train-tknzr', 'whitespace', '--exp-name', 'tk-twice'])
  t.ok(isOneLineError(twice) && /already exists .*a tokenizer/.test(twice.stderr), twice.stderr.trim())
  t.equal(readFileSync(join(root, 'tk-twice', 'lmp_tokenizer.json'), 'utf8'), tokenizer, 'the first tokenizer stays')
  // The tokenizer's own folder (its tokenizer files and train-tknzr's lmp_config.json) takes a run that uses it.
  const run = await lmp(train('tk-twice', '--tknzr-exp-name', 'tk-twice'))
  t.equal(run.status, 0, run.stderr)

  // --overwrite replaces the tokenizer and deletes the run it would no longer fit.
  const over = await lmp(['train-tknzr', 'whitespace', '--exp-name', 'tk-over', '--overwrite'])
  t.equal(over.status, 0, over.stderr)
  t.match(JSON.parse(readFileSync(join(dir, 'lmp_tokenizer.json'), 'utf8')), { tknzr_name: 'whitespace' })
  t.notOk(readdirSync(dir).some((f) => f.startsWith('ckpt-') || f === 'onnx'), 'the old run is gone')
})

t.test('2. one writer per experiment; a killed writer\'s lock does not block', async (t) => {
  const dir = copyExp('base', 'locked')
  // A lock held by a live process (this one).
  writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), command: 'lmp train-model', since: new Date().toISOString(), token: 'x' }))
  const before = snapshot(dir)
  for (const args of [[...train('locked'), '--resume'], ['export-onnx', '--exp-name', 'locked'], [...train('locked', '--overwrite')]]) {
    const r = await lmp(args)
    t.ok(isOneLineError(r), `${args[0]} ${args.at(-1)}: ${r.stderr.trim()}`)
    t.match(r.stderr, new RegExp(`is in use by lmp train-model \\(pid ${process.pid}, since .*delete .*\\.lock`))
  }
  t.same(snapshot(dir), before, 'nothing changed')

  // The lock of a process that is gone is stale: taken over, and released at the end.
  const gone = spawnSync(process.execPath, ['-e', '0']).pid
  writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: gone, host: hostname(), command: 'lmp train-model', since: new Date().toISOString(), token: 'x' }))
  const e = await lmp(['export-onnx', '--exp-name', 'locked'])
  t.equal(e.status, 0, e.stderr)
  t.notOk(existsSync(join(dir, '.lock')), 'released')

  // A real race: a training run holds the lock while it runs; an export is refused; after kill -9 the next
  // writer gets in.
  const runDir = join(root, 'racing')
  const child = spawn(process.execPath, [bin, ...train('racing', '--no-export'), '--total-step', '100000', '--ckpt-step', '5'], {
    env: { ...process.env, ...env }, stdio: 'ignore',
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  while (!existsSync(join(runDir, 'ckpt-5.safetensors'))) {
    if (child.exitCode !== null) break
    await new Promise((r) => setTimeout(r, 50))
  }
  t.ok(existsSync(join(runDir, 'ckpt-5.safetensors')), 'the run is training')
  const r = await lmp(['export-onnx', '--exp-name', 'racing'])
  t.ok(isOneLineError(r), r.stderr.trim())
  t.match(r.stderr, new RegExp(`is in use by lmp train-model \\(pid ${child.pid}, since `))
  child.kill('SIGKILL')
  await exited
  t.ok(existsSync(join(runDir, '.lock')), 'kill -9 leaves the lock file')
  const after = await lmp(['export-onnx', '--exp-name', 'racing'])
  t.equal(after.status, 0, after.stderr)
  t.match(after.stdout, /exported checkpoint \d+ of racing/)
})

t.test('3a. --resume rewrites metrics.jsonl through a temp file and a rename', async (t) => {
  // --resume from checkpoint 2 rewrites metrics.jsonl without steps 3-6; the disk is full for it.
  const dir = copyExp('base', 'rewrite', /ckpt-[46]\./)
  const log = readFileSync(join(dir, 'metrics.jsonl'))
  const r = await lmpDiskFull(/rewrite\/\.?metrics\.jsonl/, [...train('rewrite'), '--resume'])
  t.ok(endsWithOneError(r), r.stderr.trim())
  t.match(r.stderr, /cannot write \S+metrics\.jsonl: no space left on device \(ENOSPC\)/)
  t.same(readFileSync(join(dir, 'metrics.jsonl')), log, 'the old log is intact')
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left')

})

t.test('3b. an appended line is whole or absent', async (t) => {
  // The disk fills up while a line is appended.
  const r = await lmpDiskFull(/appended\/metrics\.jsonl/, train('appended'))
  t.ok(endsWithOneError(r), r.stderr.trim())
  t.match(r.stderr, /cannot write \S+appended\/metrics\.jsonl: no space left on device \(ENOSPC\); no checkpoint was written yet/)
  t.equal(readFileSync(join(root, 'appended', 'metrics.jsonl'), 'utf8'), '', 'no half line')
})

t.test('3c. temp files of a killed writer are removed by the next one, and never taken for checkpoints', async (t) => {
  const left = copyExp('base', 'leftovers', /ckpt-6\./)
  const temps = ['.ckpt-6.safetensors.12345.0123456789ab.tmp', '.metrics.jsonl.12345.0123456789ab.tmp', 'tokenizer.json.tmp-12345-1700000000000']
  for (const f of temps) writeFileSync(join(left, f), 'partial')
  writeFileSync(join(left, 'onnx', '.model.onnx.12345.0123456789ab.tmp'), 'partial')
  const listed = await lmp(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'leftovers'])
  t.equal(listed.status, 0, listed.stderr)
  t.same([...listed.stdout.matchAll(/^checkpoint: (\d+)/gm)].map((m) => m[1]), ['2', '4'], 'eval ignores them')
  const resumed = await lmp([...train('leftovers'), '--resume', '--no-export'])
  t.equal(resumed.status, 0, resumed.stderr)
  t.same(readdirSync(left).filter((f) => f.includes('tmp')), [], 'removed by the resumed run')
  t.same(readdirSync(join(left, 'onnx')).filter((f) => f.includes('tmp')), [], 'also in onnx/')
  t.same(metricsLines(left).map((l) => JSON.parse(l).step), [1, 2, 3, 4, 5, 6], 'one log line per step')
})

t.test('4. disk full: one line naming the file; the last complete checkpoint is intact', async (t) => {
  const r = await lmpDiskFull(/ckpt-4\./, train('full'))
  t.ok(endsWithOneError(r), r.stderr.trim())
  t.match(r.stderr, /lmp: error: cannot write \S+full\/ckpt-4\.optim\.safetensors: no space left on device \(ENOSPC\); the last complete checkpoint, step 2, is intact/)
  const dir = join(root, 'full')
  t.same(readdirSync(dir).filter((f) => f.startsWith('ckpt-') || f.endsWith('.tmp')).sort(), ['ckpt-2.optim.safetensors', 'ckpt-2.safetensors'])
  const e = await lmp(['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'full'])
  t.match(e.stdout, /^checkpoint: 2, ppl: [\d.]+$/m, 'checkpoint 2 loads')
  const resumed = await lmp([...train('full'), '--resume', '--no-export'])
  t.equal(resumed.status, 0, resumed.stderr)
  t.match(resumed.stdout, /trained 6 steps \(from step 2\)/)

  // The export at the end of training: the checkpoints are done, the old export (if any) untouched.
  const r2 = await lmpDiskFull(/model\.onnx/, train('full-export'))
  t.ok(endsWithOneError(r2), r2.stderr.trim())
  t.match(r2.stderr, /cannot write \S+model\.onnx: no space left on device \(ENOSPC\); training is done and checkpoint 6 is complete: run lmp export-onnx/)
})

/** Makes the first value of F32 tensor `name` in a safetensors file NaN/Infinity: its exponent bits all set. */
function flipExponent(path: string, name: string) {
  const bytes = readFileSync(path)
  const headerLength = Number(bytes.readBigUInt64LE(0))
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'))
  const at = 8 + headerLength + header[name].data_offsets[0]
  bytes[at + 3] |= 0x7f
  bytes[at + 2] |= 0x80
  writeFileSync(path, bytes)
}

t.test('5. non-finite weights are refused at load, naming the tensor', async (t) => {
  const dir = copyExp('base', 'nan', /onnx/)
  flipExponent(join(dir, 'ckpt-6.safetensors'), 'emb.weight')
  const refused = /corrupt checkpoint \S+ckpt-6\.safetensors: tensor 'emb\.weight' holds (NaN|-?Infinity) at index \[0, 0\]/
  for (const args of [
    ['eval-txt-ppl', '--exp-name', 'nan', '--txt', 'If you add 1'],
    ['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'nan', '--first-ckpt', '-1'],
    ['gen-txt', 'top-1', '--exp-name', 'nan', '--txt', 'If'],
    ['export-onnx', '--exp-name', 'nan'],
  ]) {
    const r = await lmp(args)
    t.ok(isOneLineError(r), `${args[0]}: ${r.stderr.trim()}`)
    t.match(r.stderr, refused, args[0])
  }
  // Resume reads the weights and the optimizer state.
  const resume = copyExp('base', 'nan-resume', /ckpt-6\./)
  flipExponent(join(resume, 'ckpt-4.optim.safetensors'), 'exp_avg_sq.emb.weight')
  const r = await lmp([...train('nan-resume'), '--resume'])
  t.ok(endsWithOneError(r), r.stderr.trim())
  t.match(r.stderr, /ckpt-4\.optim\.safetensors: tensor 'exp_avg_sq\.emb\.weight' holds (NaN|-?Infinity)/)
})

t.test('6. a manifest that does not describe its graph is refused at load', async (t) => {
  const edits: [string, (m: any) => void, RegExp][] = [
    ['a state shape', (m) => (m.state[0].shape = ['batch', 64]), /manifest\.json does not match model\.onnx: state input 'state_in\.0\.h' has shape \[batch, 64\] in the manifest, \[batch, 8\] in the graph/],
    ['an input shape', (m) => (m.inputs[1].shape = ['batch', 64]), /input 'state_in\.0\.h' has shape \[batch, 64\] in the manifest, \[batch, 8\] in the graph/],
    ['an input name', (m) => (m.inputs[2].name = 'state_in.0.x'), /the graph has input 'state_in\.0\.c', which the manifest does not list/],
    ['a field the graph cannot tell (checksum)', (m) => (m.maxSeqLen = 8), /manifest\.json does not match its manifestSha256/],
  ]
  for (const [what, edit, message] of edits) {
    const name = `manifest-${edits.findIndex((e) => e[0] === what)}`
    const dir = copyExp('base', name)
    const manifest = JSON.parse(readFileSync(join(dir, 'onnx', 'manifest.json'), 'utf8'))
    edit(manifest)
    writeFileSync(join(dir, 'onnx', 'manifest.json'), JSON.stringify(manifest, null, 2))
    for (const args of [['gen-txt', 'top-1', '--exp-name', name, '--txt', 'If'], ['eval-txt-ppl', '--exp-name', name, '--txt', 'If you add 1']]) {
      const r = await lmp(args)
      t.ok(isOneLineError(r), `${what}, ${args[0]}: ${r.stderr.trim()}`)
      t.match(r.stderr, message, `${what}, ${args[0]}`)
    }
    if (what !== 'a state shape') continue
    // serve refuses to start (a process of its own: a server that did start would keep this one alive).
    const served = spawnSync(process.execPath, [bin, 'serve', '--exp', name, '--port', '0'], { env: { ...process.env, ...env, LMP_DEBUG: '' }, encoding: 'utf8', timeout: 60_000 })
    const r = { status: served.status, stdout: served.stdout, stderr: served.stderr }
    t.ok(isOneLineError(r), `serve: ${r.stderr.trim()}`)
    t.match(r.stderr, message, 'serve')
  }
})

t.test('7. a model too large for the wasm heap: one line that says so and what to do; --resume says how to start again', async (t) => {
  // 16 layers of d_model 1,536 over GPT-2's vocabulary: ~500M parameters, past the 4 GB heap with AdamW.
  const huge = ['train-model', 'Transformer', '--exp-name', 'huge', '--tknzr', 'gpt2', '--d-model', '1536', '--n-head', '12', '--n-lyr', '16',
    '--d-ff', '6144', '--batch-size', '2', '--max-seq-len', '16', '--total-step', '2', '--backend', 'wasm']
  const r = cli(huge, env)
  t.ok(endsWithOneError(r), r.stderr.trim())
  t.match(r.stderr, /lmp: error: the TF\.js wasm backend ran out of memory .*use a smaller model, --batch-size or --max-seq-len, or --backend webgpu; start again with --overwrite/)
  const again = await lmp(['train-model', 'Transformer', '--exp-name', 'huge', '--resume'])
  t.ok(isOneLineError(again), again.stderr.trim())
  t.match(again.stderr, /the run stopped before its first checkpoint \(--ckpt-step 1000\); start it again with --overwrite/)
})

t.test('--resume exports at the end as the first run chose (--no-export), unless told otherwise', async (t) => {
  const first = await lmp(train('quiet', '--no-export', '--ckpt-step', '3'))
  t.equal(first.status, 0, first.stderr)
  const dir = join(root, 'quiet')
  const dropLast = () => { for (const f of ['ckpt-6.safetensors', 'ckpt-6.optim.safetensors']) rmSync(join(dir, f)) }
  dropLast()
  const resumed = await lmp(['train-model', 'LSTM-2000', '--exp-name', 'quiet', '--resume'])
  t.equal(resumed.status, 0, resumed.stderr)
  t.ok(existsSync(join(dir, 'ckpt-6.safetensors')), 'trained to the end')
  t.notOk(existsSync(join(dir, 'onnx')), 'not exported: the first run said --no-export')
  dropLast()
  const exported = await lmp(['train-model', 'LSTM-2000', '--exp-name', 'quiet', '--resume', '--export'])
  t.equal(exported.status, 0, exported.stderr)
  t.ok(existsSync(join(dir, 'onnx', 'model.onnx')), '--export given now wins')
})
