// `lmp train-model Transformer --init-from DIR` with a GPT-2-layout checkpoint (test/helpers/gpt2-fixture.ts:
// 2 layers, d_model 64, GPT-2's real 50,257-token vocabulary, Hugging Face's file layout):
// - both naming forms load, and the pretrained start (checkpoint 0), run by onnxruntime-node, gives the
//   logits of a GPT-2 forward pass written in the fixture over the raw arrays (no code shared with models/);
// - 30 fine-tuning steps on Tiny Shakespeare lower the validation loss, and the result exports, generates
//   (lmp gen-txt) and serves (startServer, the HTTP text equal to gen-txt's);
// - a missing, truncated or mismatched folder is one line and exit 1, and leaves no experiment behind.
import t from 'tap'
import { existsSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { lmpInProcess } from '../helpers/cli-in-process.ts'
import type { CliResult } from '../helpers/cli.ts'
import { FIXTURE, fixtureWeights, parseSafetensors, referenceForward, safetensorsBytes, writeGpt2Folder, type Tensors } from '../helpers/gpt2-fixture.ts'
import { FINE_TUNE_STEPS, fineTunedGpt2, shakespeareFolder } from '../helpers/gpt2-finetuned.ts'
import { openExperiment, stepModelFor } from '../../src/cli/common.ts'
import { startServer } from '../../server/index.ts'

const root = t.testdir({})
const data = shakespeareFolder(join(root, 'data'))
process.env.LMP_EXP_DIR = join(root, 'exp')

const oneLine = (r: CliResult) => r.status === 1 && r.stderr.trim().split('\n').length === 1 && r.stderr.startsWith('lmp: error: ') && !/\n\s+at /.test(r.stderr)
const PROMPT = 'ROMEO: But soft, what light through yonder window breaks?'

t.test('both naming forms load; checkpoint 0 gives the reference forward pass to 1e-4', async (t) => {
  for (const form of [{ prefixed: true, tokenizer: 'vocab' as const }, { prefixed: false, tokenizer: 'json' as const }]) {
    const name = form.prefixed ? 'start-prefixed' : 'start-bare'
    const dir = join(root, name)
    writeGpt2Folder(dir, form)
    // One step at a tiny learning rate: the run is complete, and checkpoint 0 is what was loaded.
    const r = await lmpInProcess(['train-model', 'Transformer', '--init-from', dir, '--exp-name', name, '--data-path', data, '--dset-name', 'text',
      '--max-seq-len', '16', '--batch-size', '2', '--total-step', '1', '--lr', '1e-6', '--no-export'])
    t.equal(r.status, 0, `${name}: ${r.stderr.split('\n').slice(-3).join(' ')}`)
    const exp = openExperiment(name)
    t.equal(exp.tokenizer.name, 'gpt2')
    t.equal(exp.tokenizer.vocabSize, 50259, "GPT-2's 50,257 ids and <pad>, <unk>")
    t.equal(exp.config.model.nLyr, FIXTURE.nLayer, 'the architecture comes from config.json')
    t.equal(exp.config.model.maxSeqLen, FIXTURE.nPositions, 'all of n_positions, beyond the training context')

    // The raw arrays of the file, read by the fixture's own parser; names without the prefix.
    const raw = parseSafetensors(readFileSync(join(dir, 'model.safetensors')))
    const w: Tensors = {}
    for (const [n, v] of Object.entries(raw)) w[n.replace(/^transformer\./, '')] = v
    const ids = exp.tokenizer.enc(PROMPT).slice(0, -1) // <|endoftext|> (50,256) first, as GPT-2 is prompted
    t.equal(ids[0], 50256)
    const expected = referenceForward(w, ids)
    const { model } = await stepModelFor(exp, 0)
    const { logits } = await model.forward([ids], model.initState(1))
    const V = 50259
    let worst = 0
    let worstNew = 0
    for (let p = 0; p < ids.length; p++) {
      for (let v = 0; v < 50257; v++) worst = Math.max(worst, Math.abs(logits[p * V + v] - expected[p][v]))
      // <pad> and <unk> start as the mean of GPT-2's rows: their logit is the mean of GPT-2's logits.
      const mean = expected[p].reduce((a, b) => a + b, 0) / 50257
      for (const v of [50257, 50258]) worstNew = Math.max(worstNew, Math.abs(logits[p * V + v] - mean))
    }
    t.ok(worst <= 1e-4, `${name}: max |logit − reference| = ${worst.toExponential(2)} over ${ids.length} positions × 50,257`)
    t.ok(worstNew <= 1e-4, `${name}: the added specials' logits are the mean logit (${worstNew.toExponential(2)})`)
    const spread = Math.max(...expected.at(-1)!) - Math.min(...expected.at(-1)!)
    t.ok(spread > 1, `the reference's logits are not flat (spread ${spread.toFixed(2)}), so the comparison means something`)
    await model.release?.()
  }
})

t.test('30 fine-tuning steps on Tiny Shakespeare lower the validation loss; the result exports, generates and serves', async (t) => {
  const ft = await fineTunedGpt2(join(root, 'ft'))
  const ppl = await lmpInProcess(['eval-dset-ppl', 'text', '--data-path', ft.data, '--ver', 'valid', '--exp-name', ft.expName, '--json'])
  t.equal(ppl.status, 0, ppl.stderr)
  const rows = JSON.parse(ppl.stdout).checkpoints as { checkpoint: number; nats_per_token: number }[]
  t.same(rows.map((r) => r.checkpoint), [0, FINE_TUNE_STEPS], 'checkpoint 0 is the pretrained start')
  const [before, after] = rows.map((r) => r.nats_per_token)
  t.ok(after < before - 0.5, `validation loss ${before.toFixed(3)} → ${after.toFixed(3)} nats/token`)

  // A prompt that stops mid-line: after a speaker's name ('ROMEO:') a line of the data ends, and greedy ends too.
  const prompt = 'I will not'
  const gen = await lmpInProcess(['gen-txt', 'top-1', '--exp-name', ft.expName, '--txt', prompt, '--max-new-tokens', '8', '--json'])
  t.equal(gen.status, 0, gen.stderr)
  const generated = JSON.parse(gen.stdout)
  t.ok(generated.usage.completion_tokens > 0 && generated.text.length > 0, `gen-txt: ${JSON.stringify(generated.text)}`)

  const server = await startServer({ exps: [ft.dir], port: 0, logger: pino({ level: 'silent' }) })
  t.teardown(() => server.close())
  const res = await fetch(server.url + 'v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: ft.expName, prompt, max_tokens: 8, temperature: 0 }),
  })
  t.equal(res.status, 200)
  t.equal((await res.json()).choices[0].text, generated.text, "the served greedy text is gen-txt's")
})

t.test('a missing, truncated or mismatched folder: one line, exit 1, no experiment', async (t) => {
  const good = join(root, 'good')
  const weights = writeGpt2Folder(good, { prefixed: true })
  const variant = (name: string, change: (dir: string) => void, weightsOverride?: Tensors) => {
    const dir = join(root, name)
    writeGpt2Folder(dir, { prefixed: true, weights: weightsOverride ?? weights })
    change(dir)
    return dir
  }
  const { 'h.1.mlp.c_fc.weight': _dropped, ...missing } = fixtureWeights()
  const misshapen = { ...fixtureWeights(), 'h.0.attn.c_proj.weight': { shape: [64, 32], data: new Float32Array(64 * 32) } }
  const cases: [string, string, RegExp][] = [
    ['missing folder', join(root, 'nowhere'), /no such folder/],
    ['a file, not the folder', join(variant('file', () => {}), 'config.json'), /a file, not a folder/],
    ['missing config.json', variant('no-config', (d) => rmSync(join(d, 'config.json'))), /no config\.json/],
    ['missing model.safetensors', variant('no-weights', (d) => rmSync(join(d, 'model.safetensors'))), /no model\.safetensors/],
    ['truncated model.safetensors', variant('truncated', (d) => truncateSync(join(d, 'model.safetensors'), statSync(join(d, 'model.safetensors')).size - 1000)), /model\.safetensors.*truncated/],
    ['a tensor of the wrong shape', variant('shape', () => {}, misshapen), /h\.0\.attn\.c_proj\.weight.*\[64,32\]/],
    ['a missing tensor', variant('missing-tensor', () => {}, missing), /missing tensor 'h\.1\.mlp\.c_fc\.weight'/],
    ['another vocabulary', variant('vocab', (d) => {
      const v = JSON.parse(readFileSync(join(d, 'vocab.json'), 'utf8'))
      ;[v.hello, v.world] = [v.world, v.hello]
      writeFileSync(join(d, 'vocab.json'), JSON.stringify(v))
    }), /only GPT-2's own vocabulary is supported/],
    ['no tokenizer', variant('no-tokenizer', (d) => rmSync(join(d, 'merges.txt'))), /no tokenizer/],
    ['vocab_size', variant('vocab-size', (d) => {
      const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'))
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...c, vocab_size: 50304 }))
    }), /vocab_size 50304; only GPT-2's own vocabulary/],
    ['lm_head not tied', variant('untied', (d) => {
      const raw = parseSafetensors(readFileSync(join(d, 'model.safetensors')))
      raw['lm_head.weight'] = { ...raw['lm_head.weight'], data: raw['lm_head.weight'].data.map((x) => x + 1) }
      writeFileSync(join(d, 'model.safetensors'), safetensorsBytes(raw))
    }), /lm_head\.weight differs from wte\.weight/],
  ]
  for (const [what, dir, message] of cases) {
    const name = `bad-${what.replace(/\W+/g, '-')}`
    const r = await lmpInProcess(['train-model', 'Transformer', '--init-from', dir, '--exp-name', name, '--data-path', data, '--dset-name', 'text', '--total-step', '1'])
    t.ok(oneLine(r), `${what}: one line, exit 1 (${r.stderr.trim()})`)
    t.match(r.stderr, message, what)
    t.notOk(existsSync(join(root, 'exp', name)), `${what}: no experiment folder`)
  }
  const contradicts = await lmpInProcess(['train-model', 'Transformer', '--init-from', good, '--exp-name', 'bad-arch', '--data-path', data, '--dset-name', 'text', '--n-lyr', '3'])
  t.ok(oneLine(contradicts), contradicts.stderr.trim())
  t.match(contradicts.stderr, /--n-lyr 3 contradicts .*config\.json \(2\)/)
  const agrees = ['--n-lyr', '2', '--d-model', '64', '--n-head', '4', '--d-ff', '256', '--activation', 'gelu']
  const ok = await lmpInProcess(['train-model', 'Transformer', '--init-from', good, '--exp-name', 'agrees', '--data-path', data, '--dset-name', 'text', ...agrees,
    '--max-seq-len', '8', '--batch-size', '1', '--total-step', '1', '--no-export'])
  t.equal(ok.status, 0, `options that agree with config.json are accepted: ${ok.stderr.trim().split('\n').at(-1)}`)
  for (const extra of [['--tknzr', 'character'], ['--is-uncased'], ['--max-seq-len', '129'], ['--task', 'nanogpt']]) {
    const r = await lmpInProcess(['train-model', 'Transformer', '--init-from', good, '--exp-name', 'bad-extra', '--data-path', data, '--dset-name', 'text', ...extra])
    t.ok(oneLine(r), `${extra.join(' ')}: ${r.stderr.trim()}`)
  }
  const rnn = await lmpInProcess(['train-model', 'GRU', '--init-from', good, '--exp-name', 'bad-gru', '--data-path', data, '--dset-name', 'text'])
  t.ok(oneLine(rnn), rnn.stderr.trim())
})

