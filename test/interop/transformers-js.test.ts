// Issue 12, acceptance: an exported Transformer's folder (exp/NAME) opens in transformers.js
// (@huggingface/transformers 4, local files only: no hub), with `AutoModelForCausalLM` + `AutoTokenizer` and with
// `pipeline('text-generation', NAME)`, and its greedy generation equals `lmp gen-txt top-1` token for token: each
// prompt alone, and all of them as one left-padded batch. transformers.js reads config.json,
// generation_config.json, tokenizer.json, tokenizer_config.json and onnx/model.onnx, and runs the graph on its
// own onnxruntime-node session with its own key/value-cache handling, attention mask and position ids.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { AutoModelForCausalLM, AutoTokenizer, env, pipeline, type Tensor } from '@huggingface/transformers'
import { lmpInProcess } from '../helpers/cli-in-process.ts'
import { writeGpt2Folder } from '../helpers/gpt2-fixture.ts'
import { openExperiment, servingModel } from '../../src/cli/common.ts'
import { generateText, promptIds } from '../../src/infer/generate.ts'

const root = t.testdir({})
process.env.LMP_EXP_DIR = root
// Local files only: a model id is a folder under localModelPath, and nothing is fetched or cached.
env.allowRemoteModels = false
env.allowLocalModels = true
env.localModelPath = root + '/'
env.useFSCache = false

const pretrained = join(root, 'pretrained-gpt2') // not an experiment: no lmp_config.json
writeGpt2Folder(pretrained, { prefixed: true })
const train = ['--n-head', '2', '--batch-size', '8', '--warmup-step', '2', '--lr', '0.01', '--log-step', '1000']
const MODELS = [
  {
    name: 'char',
    args: ['--d-model', '32', '--d-ff', '64', '--n-lyr', '2', '--max-seq-len', '64', '--total-step', '30', '--ckpt-step', '30'],
    maxNewTokens: 24,
  },
  {
    // GPT-2's vocabulary, trained from scratch: a few steps, so that its embedding rows differ from their init.
    name: 'gpt2',
    args: ['--tknzr', 'gpt2', '--d-model', '32', '--d-ff', '64', '--n-lyr', '1', '--max-seq-len', '48', '--total-step', '4', '--ckpt-step', '4'],
    maxNewTokens: 16,
  },
  {
    // Fine-tuned from a GPT-2-layout checkpoint (test/helpers/gpt2-fixture.ts: 2 layers, d_model 64, GPT-2's
    // vocabulary); its architecture comes from the checkpoint's config.json, so `train`'s --n-head is left out.
    name: 'gpt2-init',
    args: ['--init-from', pretrained, '--batch-size', '8', '--warmup-step', '2', '--lr', '0.003', '--max-seq-len', '32', '--total-step', '10', '--ckpt-step', '10', '--log-step', '1000'],
    maxNewTokens: 12,
    alone: true,
  },
]
// Different lengths (so the batch is padded), whitespace runs and case that normalization handles, an emoji.
const PROMPTS = ['If you add 3 to 4 you get', 'If', 'add 12 to', '  If   you add  7', 'you get 46 .', 'If you add 2 🎉']

const ids = (row: Tensor | bigint[] | number[]): number[] => Array.from((row as Tensor).data ?? row, Number)

/** Generated ids after `promptLen` prompt columns, up to and including the first EOS (where ours stops). */
function generated(row: number[], promptLen: number, eos: number): number[] {
  const out = row.slice(promptLen)
  const end = out.indexOf(eos)
  return end < 0 ? out : out.slice(0, end + 1)
}

for (const m of MODELS) {
  t.test(`${m.name}: transformers.js opens the export and generates what lmp gen-txt top-1 does`, async (t) => {
    const r = await lmpInProcess(['train-model', 'Transformer', '--exp-name', m.name, ...(m.alone ? [] : train), ...m.args])
    t.equal(r.status, 0, r.stderr)
    const dir = join(root, m.name)
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) {
      t.ok(existsSync(join(dir, f)), `exp/${m.name}/${f}`)
    }

    // The reference: what `lmp gen-txt top-1` prints, and the ids of that generation (the same code path:
    // the exported graph on onnxruntime-node, src/infer/generate.ts).
    const exp = openExperiment(m.name)
    const { model: ours } = await servingModel(exp, -1)
    t.teardown(() => ours.release?.())
    const eos = exp.tokenizer.enc('').at(-1)!
    const reference = []
    for (const prompt of PROMPTS) {
      const cli = await lmpInProcess(['gen-txt', 'top-1', '--exp-name', m.name, '--txt', prompt, '--max-new-tokens', String(m.maxNewTokens), '--json'])
      t.equal(cli.status, 0, cli.stderr)
      const printed = JSON.parse(cli.stdout)
      const ref = await generateText(ours, exp.tokenizer, prompt, { temperature: 0, maxNewTokens: m.maxNewTokens })
      t.equal(printed.text, ref.text, `${JSON.stringify(prompt)}: gen-txt's text`)
      t.equal(printed.usage.completion_tokens, ref.tokenIds.length, `${JSON.stringify(prompt)}: gen-txt's token count`)
      reference.push({ prompt, promptIds: promptIds(exp.tokenizer, prompt), tokenIds: ref.tokenIds })
    }

    const tokenizer = await AutoTokenizer.from_pretrained(m.name)
    const model = await AutoModelForCausalLM.from_pretrained(m.name, { dtype: 'fp32' })
    t.teardown(() => model.dispose())
    t.equal(model.config.model_type, 'gpt2')
    t.equal(tokenizer.padding_side, 'left', 'tokenizer_config.json pads batches on the left')

    for (const ref of reference) {
      const input = tokenizer(ref.prompt)
      t.same(ids(input.input_ids), ref.promptIds, `${JSON.stringify(ref.prompt)}: the same prompt ids (BOS, no EOS)`)
      const out = (await model.generate({ ...input, max_new_tokens: m.maxNewTokens, do_sample: false })) as Tensor
      t.same(generated(ids(out), ref.promptIds.length, eos), ref.tokenIds, `${JSON.stringify(ref.prompt)}: the same greedy tokens`)
    }

    // All prompts as one batch, padded on the left to the longest.
    const batch = tokenizer(PROMPTS, { padding: true })
    const width = batch.input_ids.dims[1]
    const mask = (batch.attention_mask.tolist() as bigint[][]).map((row) => row.map(Number))
    t.ok(mask.some((row) => row[0] === 0) && mask.every((row) => row[width - 1] === 1), 'rows of different lengths, padded on the left')
    const out = ((await model.generate({ ...batch, max_new_tokens: m.maxNewTokens, do_sample: false })) as Tensor).tolist() as bigint[][]
    reference.forEach((ref, i) => {
      t.same(generated(out[i].map(Number), width, eos), ref.tokenIds, `batch row ${i} ${JSON.stringify(ref.prompt)}: the same greedy tokens`)
    })

    // The pipeline gives the same text as those tokens decoded. One prompt a call: in a batch, transformers.js
    // 4 goes on generating for a row that has ended (its generate() stops only when every row has), so a
    // batch's texts run on past EOS; the ids above are compared up to EOS.
    const generator = await pipeline('text-generation', m.name, { dtype: 'fp32' })
    t.teardown(() => generator.dispose())
    for (const ref of reference) {
      const [out] = (await generator(ref.prompt, { max_new_tokens: m.maxNewTokens, do_sample: false })) as { generated_text: string }[]
      const expected = tokenizer.decode([...ref.promptIds, ...ref.tokenIds], { skip_special_tokens: true })
      t.equal(out.generated_text, expected, `pipeline ${JSON.stringify(ref.prompt)}`)
    }
  })
}
