// Issue 12, items 1 and 3: the experiment folder is a Hugging Face folder (config.json, tokenizer.json,
// tokenizer_config.json, generation_config.json beside lmp's own lmp_config.json and lmp_tokenizer.json), the
// exported graph describes itself (metadata_props, producer_version), and a folder of the old layout (lmp's
// config.json and tokenizer.json under those names, an export whose manifest names onnx/tokenizer.json) keeps
// working for every command, and is upgraded when a command writes to it.
import t from 'tap'
import { cpSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { spawnSync } from 'node:child_process'
import { lmpInProcess as lmp } from '../helpers/cli-in-process.ts'
import { decodeModel } from '../../onnx/proto.ts'
import { manifestDigestInput } from '../../src/infer/manifest-check.ts'
import { loadExperimentModel } from '../../server/models.ts'
import { version } from '../../src/cli/index.ts'

const root = t.testdir({})
process.env.LMP_EXP_DIR = root
const tiny = ['--d-model', '16', '--n-head', '2', '--d-ff', '32', '--n-lyr', '1', '--max-seq-len', '32', '--batch-size', '4',
  '--warmup-step', '1', '--log-step', '100', '--is-uncased']
const json = (...p: string[]) => JSON.parse(readFileSync(join(root, ...p), 'utf8'))
// Debian's python3-onnx installs for /usr/bin/python3; `python3` on PATH may be another interpreter. Run from
// a temp dir so that this project's onnx/ folder cannot shadow the onnx package (as in test/onnx/proto.test.ts).
const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import onnx.checker'], { cwd: tmpdir() }).status === 0)

const made = await lmp(['train-model', 'Transformer', '--exp-name', 'new', ...tiny, '--total-step', '4', '--ckpt-step', '2'])
t.equal(made.status, 0, made.stderr)

t.test('a Transformer experiment: lmp files and Hugging Face files side by side', async (t) => {
  const dir = join(root, 'new')
  for (const f of ['lmp_config.json', 'lmp_tokenizer.json', 'tokenizer.json', 'config.json', 'tokenizer_config.json', 'generation_config.json',
    'onnx/model.onnx', 'onnx/manifest.json', 'onnx/lmp_tokenizer.json']) t.ok(existsSync(join(dir, f)), f)
  t.notOk(existsSync(join(dir, 'onnx', 'tokenizer.json')), 'no second tokenizer name in onnx/')
  t.match(json('new', 'lmp_config.json'), { model: { model: 'Transformer', dModel: 16 }, train: { totalStep: 4 } })
  t.equal(json('new', 'lmp_tokenizer.json').tknzr_name, 'character')
  t.match(json('new', 'tokenizer.json'), { version: '1.0', model: { type: 'WordLevel' } }, "Hugging Face's tokenizer format")
  const vocab = json('new', 'lmp_tokenizer.json').tk2id
  const ids = { bos: vocab['<bos>'], eos: vocab['<eos>'], pad: vocab['<pad>'], unk: vocab['<unk>'] }
  const vocabSize = Object.keys(vocab).length
  t.same(json('new', 'config.json'), {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: vocabSize, n_positions: 32, n_ctx: 32, n_embd: 16,
    n_layer: 1, n_head: 2, n_inner: 32, activation_function: 'gelu_new', resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
    layer_norm_epsilon: 1e-5, scale_attn_weights: true, tie_word_embeddings: true, bos_token_id: ids.bos, eos_token_id: ids.eos,
    pad_token_id: ids.pad, use_cache: true, torch_dtype: 'float32', lmp_layout: 'pre-ln', lmp_positions: 'learned',
  })
  t.same(json('new', 'generation_config.json'), {
    bos_token_id: ids.bos, eos_token_id: ids.eos, pad_token_id: ids.pad, suppress_tokens: [ids.bos, ids.pad, ids.unk].sort((a, b) => a - b),
  })
  t.match(json('new', 'tokenizer_config.json'), { model_max_length: 32, padding_side: 'left', add_bos_token: true, bos_token: '<bos>' })

  const manifest = json('new', 'onnx', 'manifest.json')
  t.equal(manifest.tokenizer, 'lmp_tokenizer.json')
  t.same(manifest.specialTokens, ids, "the manifest's special ids are the tokenizer's")

  // The graph describes itself: metadata_props and producer, read back with our decoder ...
  const bytes = readFileSync(join(dir, 'onnx', 'model.onnx'))
  const model = decodeModel(bytes)
  t.equal(model.producerName, 'lm-playground')
  t.equal(model.producerVersion, version(), "producer_version is package.json's version")
  const metadata = {
    architecture: 'Transformer', vocab_size: String(vocabSize), max_seq_len: '32', tokenizer: 'character',
    bos_token_id: String(ids.bos), eos_token_id: String(ids.eos), pad_token_id: String(ids.pad), unk_token_id: String(ids.unk),
  }
  t.same(model.metadata, metadata)
  // ... and with the reference implementation (python3-onnx), where it is installed.
  await t.test('python onnx reads the same fields', { skip: python ? false : 'python3-onnx is not installed (apt-get install -y python3-onnx)' }, async (t) => {
    const py = spawnSync(python!, ['-c', [
      'import json, sys, onnx',
      'm = onnx.load(sys.argv[1])',
      'onnx.checker.check_model(m)',
      'print(json.dumps({"producer": [m.producer_name, m.producer_version], "metadata": {p.key: p.value for p in m.metadata_props}}))',
    ].join('\n'), join(dir, 'onnx', 'model.onnx')], { encoding: 'utf8', cwd: tmpdir() })
    t.equal(py.status, 0, py.stderr)
    t.same(JSON.parse(py.stdout), { producer: ['lm-playground', version()], metadata })
  })
})

t.test('a recurrent experiment: the tokenizer files, no Hugging Face model files; metadata without a context length', async (t) => {
  const r = await lmp(['train-model', 'GRU', '--exp-name', 'rnn', '--d-emb', '8', '--d-hid', '8', '--batch-size', '4', '--max-seq-len', '16',
    '--total-step', '2', '--ckpt-step', '2', '--warmup-step', '1', '--is-uncased'])
  t.equal(r.status, 0, r.stderr)
  for (const f of ['lmp_config.json', 'lmp_tokenizer.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/lmp_tokenizer.json']) t.ok(existsSync(join(root, 'rnn', f)), f)
  for (const f of ['config.json', 'generation_config.json']) t.notOk(existsSync(join(root, 'rnn', f)), `no ${f}`)
  t.match(json('rnn', 'tokenizer_config.json'), { unk_token: '<unk>', bos_token: '<bos>', add_bos_token: true })
  t.notOk('model_max_length' in json('rnn', 'tokenizer_config.json'), 'no context limit')
  const { metadata } = decodeModel(readFileSync(join(root, 'rnn', 'onnx', 'model.onnx')))
  t.match(metadata, { architecture: 'GRU', tokenizer: 'character', bos_token_id: '0' })
  t.notOk('max_seq_len' in metadata!, 'a recurrent model has no context limit')
})

t.test('a tokenizer alone (lmp train-tknzr) has both Hugging Face tokenizer files, and a run can use it', async (t) => {
  // Without tokenizer_config.json, transformers.js loads no tokenizer and @huggingface/tokenizers reads an
  // unknown word as null instead of <unk> (a new user's report).
  const r = await lmp(['train-tknzr', 'whitespace', '--exp-name', 'words', '--is-uncased'])
  t.equal(r.status, 0, r.stderr)
  for (const f of ['lmp_config.json', 'lmp_tokenizer.json', 'tokenizer.json', 'tokenizer_config.json']) t.ok(existsSync(join(root, 'words', f)), f)
  t.match(json('words', 'tokenizer_config.json'), { unk_token: '<unk>', pad_token: '<pad>', padding_side: 'left' })
  const { Tokenizer } = await import('@huggingface/tokenizers')
  const hf = new Tokenizer(json('words', 'tokenizer.json'), json('words', 'tokenizer_config.json'))
  const ids = hf.encode('if you add zyzzyva', { add_special_tokens: false }).ids
  t.equal(ids.at(-1), 3, 'an unknown word is <unk>, as in lmp')
  const run = await lmp(['train-model', 'GRU', '--exp-name', 'words', '--tknzr-exp-name', 'words', '--d-emb', '8', '--d-hid', '8',
    '--batch-size', '4', '--max-seq-len', '16', '--total-step', '2', '--ckpt-step', '2', '--warmup-step', '1', '--no-export'])
  t.equal(run.status, 0, `a run in the tokenizer's own folder: ${run.stderr}`)
})

/**
 * A copy of experiment 'new' as this project wrote it before lmp's files were renamed: lmp's config.json and
 * tokenizer.json, no Hugging Face files, onnx/tokenizer.json named by the manifest (its checksum redone).
 */
function oldLayout(name: string, keepCheckpoints = /./): string {
  const dir = join(root, name)
  cpSync(join(root, 'new'), dir, { recursive: true, filter: (src) => !/ckpt-/.test(src) || keepCheckpoints.test(src) })
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) rmSync(join(dir, f))
  renameSync(join(dir, 'lmp_config.json'), join(dir, 'config.json'))
  renameSync(join(dir, 'lmp_tokenizer.json'), join(dir, 'tokenizer.json'))
  renameSync(join(dir, 'onnx', 'lmp_tokenizer.json'), join(dir, 'onnx', 'tokenizer.json'))
  const manifest = JSON.parse(readFileSync(join(dir, 'onnx', 'manifest.json'), 'utf8'))
  manifest.tokenizer = 'tokenizer.json'
  manifest.manifestSha256 = createHash('sha256').update(manifestDigestInput(manifest)).digest('hex')
  writeFileSync(join(dir, 'onnx', 'manifest.json'), JSON.stringify(manifest))
  return dir
}

t.test('an experiment folder of the old layout works with every command', async (t) => {
  const dir = oldLayout('old')
  const prompt = ['--txt', 'If you add 3']
  const same = async (args: string[], what: string) => {
    const [a, b] = [await lmp([...args, '--exp-name', 'new']), await lmp([...args, '--exp-name', 'old'])]
    t.equal(b.status, 0, `${what}: ${b.stderr}`)
    t.equal(b.stdout.replaceAll('"old"', '"new"'), a.stdout, `${what}: the same output as the new layout's`)
  }
  await same(['gen-txt', 'top-1', ...prompt, '--max-new-tokens', '8', '--json'], 'gen-txt')
  await same(['eval-txt-ppl', ...prompt, '--json'], 'eval-txt-ppl')
  await same(['eval-dset-ppl', 'demo', '--ver', 'test'], 'eval-dset-ppl')
  await same(['tknz-txt', ...prompt, '--json'], 'tknz-txt')
  const served = await loadExperimentModel(dir)
  t.equal(served.manifest.tokenizer, 'tokenizer.json', 'lmp serve loads the old export as it is')
  await served.model.release?.()
  t.ok(existsSync(join(dir, 'config.json')) && !existsSync(join(dir, 'lmp_config.json')), 'reading changes nothing')

  // Writing (export-onnx) upgrades the folder: lmp's files renamed, Hugging Face's written, the old onnx/tokenizer.json gone.
  const e = await lmp(['export-onnx', '--exp-name', 'old'])
  t.equal(e.status, 0, e.stderr)
  t.equal(json('old', 'lmp_config.json').model.model, 'Transformer')
  t.equal(json('old', 'lmp_tokenizer.json').tknzr_name, 'character')
  t.equal(json('old', 'config.json').model_type, 'gpt2')
  t.equal(json('old', 'tokenizer.json').version, '1.0')
  t.ok(existsSync(join(dir, 'generation_config.json')) && existsSync(join(dir, 'tokenizer_config.json')))
  t.notOk(existsSync(join(dir, 'onnx', 'tokenizer.json')))
  t.equal(json('old', 'onnx', 'manifest.json').tokenizer, 'lmp_tokenizer.json')
  await same(['gen-txt', 'top-1', ...prompt, '--max-new-tokens', '8', '--json'], 'gen-txt after the upgrade')
})

t.test('--resume continues an old-layout experiment and upgrades it', async (t) => {
  const dir = oldLayout('old-resume', /ckpt-2\./)
  const r = await lmp(['train-model', 'Transformer', '--exp-name', 'old-resume', '--resume'])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^trained 4 steps \(from step 2\)/m)
  t.same(json('old-resume', 'lmp_config.json'), json('new', 'lmp_config.json'), "the run's options, under their new name")
  t.equal(json('old-resume', 'config.json').model_type, 'gpt2')
  t.ok(existsSync(join(dir, 'ckpt-4.safetensors')))
})

t.test('a Hugging Face folder is not an lmp experiment', async (t) => {
  const dir = join(root, 'hf-only')
  cpSync(join(root, 'new'), dir, { recursive: true, filter: (src) => !/lmp_/.test(src) })
  const r = await lmp(['gen-txt', 'top-1', '--exp-name', 'hf-only', '--txt', 'If'])
  t.equal(r.status, 1)
  t.match(r.stderr, /^lmp: error: unknown experiment 'hf-only' \(no .*hf-only\/lmp_config\.json\)/)
  const k = await lmp(['tknz-txt', '--exp-name', 'hf-only', '--txt', 'If'])
  t.match(k.stderr, /^lmp: error: unknown tokenizer experiment 'hf-only' \(no .*hf-only\/lmp_tokenizer\.json/)
})

t.test('export-onnx keeps a chat_template the user added to tokenizer_config.json', async (t) => {
  const file = join(root, 'new', 'tokenizer_config.json')
  writeFileSync(file, JSON.stringify({ ...json('new', 'tokenizer_config.json'), chat_template: '{{ messages[0].content }}' }))
  t.equal((await lmp(['export-onnx', '--exp-name', 'new'])).status, 0)
  t.match(json('new', 'tokenizer_config.json'), { chat_template: '{{ messages[0].content }}', padding_side: 'left' })
})
