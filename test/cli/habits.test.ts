// What a command-line user expects of `lmp`: --version, a closed pipe ends quietly with status 0, `--txt -`
// reads standard input, --json output (eval-dset-ppl, eval-txt-ppl, gen-txt), and tknz-txt --json gives
// each token's own text beside its id.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TOKENIZER_NAMES } from '../../src/tokenizer/index.ts'
import { loadTokenizer } from '../../src/tokenizer/io.ts'
import { isOneLineError, lmp } from '../helpers/cli.ts'

const bin = fileURLToPath(new URL('../../bin/lmp.js', import.meta.url))
const root = t.testdir({})
const env = { LMP_EXP_DIR: root }

/** `lmp ARGS` with `input` on standard input. */
function lmpWithInput(args: string[], input: string | Buffer) {
  const r = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, ...env, LMP_DEBUG: '' }, input, encoding: 'utf8', timeout: 120_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const trained = lmp(['train-model', 'LSTM-2000', '--exp-name', 'm', '--total-step', '2', '--ckpt-step', '2', '--warmup-step', '1',
  '--batch-size', '4', '--max-seq-len', '20', '--stride', '20', '--d-emb', '8', '--n-blk', '8'], env)
t.equal(trained.status, 0, trained.stderr)

t.test('lmp --version prints the package version', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  for (const flag of ['--version', '-V']) {
    const r = lmp([flag])
    t.equal(r.status, 0)
    t.equal(r.stdout, `lmp ${version}\n`)
    t.equal(r.stderr, '')
  }
  t.match(lmp(['--help']).stdout, /lmp --version/)
})

t.test('a closed pipe (lmp gen-txt ... | head -c 10) ends quietly with status 0', async (t) => {
  const script = `set -o pipefail; "${process.execPath}" "${bin}" gen-txt top-1 --exp-name m --txt 'If you' --max-new-tokens 100000 | head -c 10`
  const r = spawnSync('bash', ['-c', script], { env: { ...process.env, ...env, LMP_DEBUG: '' }, encoding: 'utf8', timeout: 120_000 })
  t.equal(r.stdout.length, 10, 'head got its 10 bytes')
  t.equal(r.stderr, '', 'no stack trace, no message')
  t.equal(r.status, 0, 'the pipeline succeeds (set -o pipefail)')
})

t.test('--txt - reads standard input, as it is', async (t) => {
  const text = 'If you add 1 to 2\nyou get 3 .\n'
  for (const args of [['eval-txt-ppl', '--exp-name', 'm'], ['gen-txt', 'top-1', '--exp-name', 'm', '--max-new-tokens', '8'], ['tknz-txt', '--exp-name', 'm', '--json']]) {
    const piped = lmpWithInput([...args, '--txt', '-'], text)
    t.equal(piped.status, 0, piped.stderr)
    t.equal(piped.stdout, lmp([...args, '--txt', text], env).stdout, `${args[0]}: the same as --txt TEXT`)
  }
  const bad = lmpWithInput(['tknz-txt', '--exp-name', 'm', '--txt', '-'], Buffer.from([0x61, 0xff, 0xfe]))
  t.ok(isOneLineError(bad), bad.stderr)
  t.match(bad.stderr, /--txt -: standard input is not valid UTF-8/)
  const empty = lmpWithInput(['eval-txt-ppl', '--exp-name', 'm', '--txt', '-'], '')
  t.ok(isOneLineError(empty), empty.stderr)
  t.match(empty.stderr, /standard input is empty/)
})

t.test('--json: eval-dset-ppl, eval-txt-ppl and gen-txt print one JSON object with the numbers of the text output', async (t) => {
  const dsetArgs = ['eval-dset-ppl', 'demo', '--ver', 'test', '--exp-name', 'm']
  const dset = lmp([...dsetArgs, '--json'], env)
  t.equal(dset.status, 0, dset.stderr)
  const d = JSON.parse(dset.stdout)
  const plainPpl = Number(/^checkpoint: 2, ppl: (\S+)$/m.exec(lmp(dsetArgs, env).stdout)![1])
  t.match(d, { object: 'dataset_perplexity', model: 'm', dataset: 'demo', split: 'test', checkpoints: [{ checkpoint: 2, perplexity: plainPpl }] })
  t.ok(d.checkpoints[0].tokens > 0)
  t.same(d.best, d.checkpoints[0])

  const txt = 'If you add 1 to 2'
  const ppl = lmp(['eval-txt-ppl', '--exp-name', 'm', '--txt', txt, '--json', '--per-token'], env)
  t.equal(ppl.status, 0, ppl.stderr)
  const p = JSON.parse(ppl.stdout)
  const plain = /^ppl: (\S+) /m.exec(lmp(['eval-txt-ppl', '--exp-name', 'm', '--txt', txt], env).stdout)!
  t.equal(p.perplexity, Number(plain[1]))
  t.equal(p.checkpoint, 2)
  t.equal(p.tokens, txt.length + 1, 'one token per character, and EOS')
  t.equal(p.per_token.length, p.tokens)
  t.equal(p.per_token.map((x: { token: string }) => x.token).join(''), txt, 'each token\'s own text: they spell the text')
  t.same(p.per_token[2], { token_id: p.per_token[2].token_id, token: ' ', logprob: p.per_token[2].logprob }, 'a space is " "')
  t.ok(Math.abs(-p.per_token.reduce((a: number, x: { logprob: number }) => a + x.logprob, 0) - p.total_nll) < 1e-9)

  const genArgs = ['gen-txt', 'top-1', '--exp-name', 'm', '--txt', 'If you', '--max-new-tokens', '5']
  const gen = lmp([...genArgs, '--json'], env)
  t.equal(gen.status, 0, gen.stderr)
  const g = JSON.parse(gen.stdout)
  t.equal(g.text + '\n', lmp(genArgs, env).stdout, 'the text gen-txt streams')
  t.match(g, { model: 'm', checkpoint: 2 })
  t.match(g.finish_reason, /^(stop|length)$/)
  t.equal(g.usage.prompt_tokens, 'If you'.length + 1, 'BOS and the prompt')
  t.ok(g.usage.completion_tokens >= 1 && g.usage.completion_tokens <= 5)
  if (g.finish_reason === 'length') t.equal(g.usage.completion_tokens, 5)
  t.equal(g.usage.total_tokens, g.usage.prompt_tokens + g.usage.completion_tokens)
})

t.test('tknz-txt --json: tokens and ids of the same length, each token its own text, for every tokenizer kind', async (t) => {
  const text = 'If you add 3 to 4  you get 🎉 é .'
  for (const kind of TOKENIZER_NAMES) {
    const made = lmp(['train-tknzr', kind, '--exp-name', `tk-${kind}`], env)
    t.equal(made.status, 0, made.stderr)
    const r = lmp(['tknz-txt', '--exp-name', `tk-${kind}`, '--txt', text, '--json'], env)
    t.equal(r.status, 0, r.stderr)
    const { tokens, ids } = JSON.parse(r.stdout)
    const tk = loadTokenizer(join(root, `tk-${kind}`, 'lmp_tokenizer.json'))
    t.same(ids, tk.enc(text).slice(1, -1), `${kind}: the ids, BOS and EOS left out`)
    t.equal(tokens.length, ids.length, `${kind}: one token per id`)
    // a BPE word-final token carries its space after it: BPE's tokens end in one space more than dec()
      t.equal(tokens.join(''), tk.dec(tk.enc(text), { rmSpTks: true }) + (kind === 'BPE' ? ' ' : ''), `${kind}: the tokens spell the (normalized) text`)
    if (kind === 'character') t.same(tokens.slice(0, 4), ['I', 'f', ' ', 'y'], 'a space is " "')
    if (kind === 'gpt2') {
      t.same(tokens.slice(0, 3), ['If', ' you', ' add'], "GPT-2's 'Ġyou' is ' you'")
      t.equal(tokens.join(''), text, 'gpt2 keeps the text as it is (the double space, the emoji)')
      t.notOk(tokens.some((x: string) => x.includes('\uFFFD')), 'no token shows half a character')
    }
  }
  t.equal(lmp(['tknz-txt', '--exp-name', 'tk-character', '--txt', 'a b'], env).stdout, "['a', ' ', 'b']\n", "without --json: lmp's Python-style list")
})
