// `lmp train-model Transformer --init-from DIR`: fine-tune a pretrained Hugging Face GPT-2 (models/pretrained-gpt2.ts).
// The architecture comes from DIR/config.json and the tokenizer is the gpt2 one (GPT-2's own ids); an option
// that says otherwise is refused in one line rather than silently overridden.
import { resolve } from 'node:path'
import { LmpError } from '../errors.ts'
import type { Tokenizer } from '../tokenizer/index.ts'
import type { OptionSpec } from './args.ts'

export const INIT_FROM_OPTION: Record<string, OptionSpec> = {
  'init-from': { type: 'string', help: 'Transformer: start from a Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt); the architecture comes from its config.json, the tokenizer is gpt2' },
}

// Our options that a GPT2Config fixes: option key → its flag.
const ARCH_FLAGS = { nLyr: 'n-lyr', nHead: 'n-head', dModel: 'd-model', dFf: 'd-ff', activation: 'activation', layout: 'layout', positions: 'positions' } as const

export interface Pretrained {
  dir: string
  /** The options with the architecture of config.json and the gpt2 tokenizer filled in. */
  options: Record<string, any>
  /** The model config fields config.json fixes (maxSeqLen = n_positions: the position table's rows). */
  arch: Record<string, unknown>
  /** Checks DIR's vocabulary against `tokenizer` (GPT-2's) and reads the weights, rows added for its specials. */
  weights(tokenizer: Tokenizer): Promise<Record<string, Float32Array>>
}

/** Everything --init-from can check before any data or weights are read; `given`: the flags on the command line. */
export async function prepareInitFrom(modelName: string, o: Record<string, any>, given: ReadonlySet<string>): Promise<Pretrained> {
  const dir = resolve(o.initFrom)
  if (!modelName.startsWith('Transformer')) throw new LmpError(`--init-from loads a GPT-2 into the Transformer, not ${modelName}`)
  if (o.task !== 'lmp') throw new LmpError(`--init-from uses GPT-2's vocabulary; --task ${o.task} has its own`)
  if (o.tknzrExpName || (given.has('tknzr') && o.tknzr !== 'gpt2') || o.isUncased || o.maxVocab !== -1 || o.minCount !== 0) {
    throw new LmpError("--init-from uses GPT-2's own tokenizer (gpt2, cased, its whole vocabulary): drop --tknzr-exp-name, --tknzr, --is-uncased, --max-vocab and --min-count")
  }
  const { readGpt2Config } = await import('../../models/pretrained-gpt2.ts')
  const a = readGpt2Config(dir)
  for (const [key, flag] of Object.entries(ARCH_FLAGS) as [keyof typeof ARCH_FLAGS, string][]) {
    if (given.has(key) && o[key] !== a[key]) {
      throw new LmpError(`--${flag} ${o[key]} contradicts ${resolve(dir, 'config.json')} (${a[key]}): with --init-from the architecture comes from there; drop --${flag}`)
    }
  }
  if (o.maxSeqLen > a.maxSeqLen) throw new LmpError(`--max-seq-len ${o.maxSeqLen} is longer than the pretrained model's ${a.maxSeqLen} positions (n_positions)`)
  const { maxSeqLen, ...options } = a
  return {
    dir,
    options: { ...o, ...options, tknzr: 'gpt2' },
    arch: { ...options, maxSeqLen },
    async weights(tokenizer) {
      const { checkGpt2Tokenizer, gpt2Ranks, readGpt2Weights, GPT2_VOCAB_SIZE } = await import('../../models/pretrained-gpt2.ts')
      // GPT-2's ids must be the embedding's rows: the gpt2 tokenizer's own layout, its specials after them.
      const s = tokenizer.specialIds
      if (tokenizer.name !== 'gpt2' || tokenizer.vocabSize !== GPT2_VOCAB_SIZE + 2 || s.eos !== GPT2_VOCAB_SIZE - 1 || s.bos !== s.eos) {
        throw new LmpError(`--init-from needs the gpt2 tokenizer with GPT-2's ids (<|endoftext|> = ${GPT2_VOCAB_SIZE - 1}); got ${tokenizer.name} with ${tokenizer.vocabSize} ids`)
      }
      checkGpt2Tokenizer(dir, await gpt2Ranks())
      return readGpt2Weights(dir, a, tokenizer.vocabSize)
    },
  }
}
