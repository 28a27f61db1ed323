import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { main } from '../../src/cli/index.ts'
import { pyRepr } from '../../src/cli/tknz-txt.ts'

/** Run `lmp ARGS` in-process; returns exit code, stdout and stderr. */
async function lmp(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = ''
  const log = console.log, write = process.stderr.write
  console.log = (...a: unknown[]) => { out += a.join(' ') + '\n' }
  process.stderr.write = ((s: string) => { err += s; return true }) as typeof process.stderr.write
  try {
    const code = await main(args)
    return { code, out, err }
  } finally {
    console.log = log
    process.stderr.write = write
  }
}

t.beforeEach((t) => { process.env.LMP_EXP_DIR = t.testdir() })
t.afterEach(() => { delete process.env.LMP_EXP_DIR })

t.test('sample-dset', async (t) => {
  t.same(await lmp(['sample-dset', 'demo']), { code: 0, out: 'If you add 0 to 1 you get 1 .\n', err: '' })
  t.equal((await lmp(['sample_dset', 'demo', '--ver', 'test', '--idx=99'])).out, 'If you add 99 to 99 you get 198 .\n', "lmp's spelling")
  t.equal((await lmp(['sample-dset', 'wiki-text-2', '--ver', 'test', '--data_path', '../shared/data'])).out.slice(0, 16), '= Robert <unk> =')
  const bad = await lmp(['sample-dset', 'demo', '--idx', '5000'])
  t.equal(bad.code, 2)
  t.equal(bad.err, "lmp: error: --idx 5000 is out of range: demo (train) has 4950 samples\n")
  t.match((await lmp(['sample-dset', 'nope'])).err, /<dset_name> must be one of demo, tiny-shakespeare/)
  t.match((await lmp(['sample-dset', 'demo', '--ver', 'dev'])).err, /^lmp: error: unknown version 'dev' of dataset 'demo': must be one of train, valid, test\n$/)
  const help = await lmp(['sample-dset', '--help'])
  t.equal(help.code, 0)
  t.match(help.out, /Usage: lmp sample-dset <dset_name>[\s\S]*--idx/)
})

t.test('train-tknzr then tknz-txt', async (t) => {
  const r = await lmp(['train-tknzr', 'character', '--is_uncased', '--exp-name', 'ch'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /tokenizer: character, vocabulary size \d+ \(built on demo\/train, 4950 samples/)
  t.match(r.out, /coverage on demo\/valid: \d+ tokens, 0 unknown \(0\.00% <unk>\)/)
  const dir = join(process.env.LMP_EXP_DIR!, 'ch')
  t.ok(existsSync(join(dir, 'lmp_tokenizer.json')))
  t.match(JSON.parse(readFileSync(join(dir, 'lmp_config.json'), 'utf8')), { command: 'train-tknzr', tknzr_name: 'character', dset_name: 'demo', ver: 'train', is_uncased: true })
  t.equal((await lmp(['tknz-txt', '--exp-name', 'ch', '--txt', 'If 12'])).out, "['i', 'f', ' ', '1', '2']\n")
  const j = JSON.parse((await lmp(['tknz-txt', '--exp-name', 'ch', '--txt', 'if?', '--json'])).out)
  t.same(j.tokens, ['i', 'f', '<unk>'], "each id's own text: '?' is not in the vocabulary")
  t.match(j.ids, [Number, Number, 3])
  t.notOk(j.ids.slice(0, 2).includes(3), "'i' and 'f' are in the vocabulary, '?' is not")

  const ws = await lmp(['train-tknzr', 'whitespace', '--exp-name', 'ws', '--max-vocab', '20'])
  t.match(ws.out, /vocabulary size 20 /)
  t.match(ws.out, /coverage on demo\/valid: 49500 tokens, \d+ unknown \((?!0\.00)[\d.]+% <unk>\)/)
  t.equal((await lmp(['tknz-txt', '--exp_name', 'ws', '--txt', "If you add it's"])).out, `['If', 'you', 'add', "it's"]\n`)

  const bpe = await lmp(['train-tknzr', 'BPE', '--exp-name', 'bpe', '--dset-name', 'tiny-shakespeare', '--data-path', '../shared/data', '--n-merge', '200'])
  t.equal(bpe.code, 0, bpe.err)
  t.match(bpe.out, /coverage on tiny-shakespeare\/valid: \d+ tokens, 0 unknown .* 0\.\d+ tokens per character/)
  t.match(JSON.parse(readFileSync(join(process.env.LMP_EXP_DIR!, 'bpe', 'lmp_config.json'), 'utf8')), { n_merge: 200, data_path: '../shared/data' })
  t.equal((await lmp(['tknz-txt', '--exp-name', 'bpe', '--txt', 'the'])).out, "['the<eow>']\n")

  t.match((await lmp(['tknz-txt', '--exp-name', 'nope'])).err, /^lmp: error: unknown tokenizer experiment 'nope'/)
  t.match((await lmp(['train-tknzr', 'BPE', '--n-merge', '0'])).err, /--n-merge must be >= 1/)
  t.match((await lmp(['train-tknzr', 'word'])).err, /<tknzr_name> must be one of character, whitespace, BPE, gpt2/)
  t.match((await lmp(['train-tknzr', '--help'])).out, /--is-uncased[\s\S]*--n-merge/)
  t.match((await lmp(['tknz-txt', '--help'])).out, /--txt/)
})

t.test('python repr of tokens', async (t) => {
  t.equal(pyRepr('a'), "'a'")
  t.equal(pyRepr("it's"), `"it's"`)
  t.equal(pyRepr(`'"`), `'\\'"'`)
  t.equal(pyRepr('\n\t\\'), "'\\n\\t\\\\'")
  t.equal(pyRepr('\u0085\u3000é😀'), "'\\x85\\u3000é😀'")
})

t.test('a real process: one-line error, non-zero exit, no stack trace', async (t) => {
  const r = spawnSync(process.execPath, ['bin/lmp.js', 'sample-dset', 'demo', '--bogus'], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.equal(r.stderr, "lmp: error: unknown option --bogus for 'sample-dset' (see lmp sample-dset --help)\n")
  t.equal(r.stdout, '')
})
