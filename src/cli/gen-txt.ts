// `lmp gen-txt <top-1|top-K|top-P>`: continue a prompt (onnxruntime-node). lmp's methods, plus
// temperature, repetition penalty, stop strings and a seed.
import type { Command } from './index.ts'
import { DEVICES, type Device } from '../infer/device.ts'
import { LmpError } from '../errors.ts'
import { openExperiment, servingModel } from './common.ts'
import { readTxtOption } from './io.ts'

export const command: Command = {
  spec: {
    name: 'gen-txt',
    summary: 'Generate a continuation of a prompt (onnxruntime-node); prints only the continuation.',
    positionals: [{ name: 'method', help: 'decoding method', choices: ['top-1', 'top-K', 'top-P'] }],
    options: {
      'exp-name': { type: 'string', default: 'my_model_exp', help: 'model experiment' },
      ckpt: { type: 'int', default: -1, min: -1, help: 'checkpoint step (-1: latest)' },
      txt: { type: 'string', default: '', help: "the prompt ('-': read it from standard input)" },
      'max-new-tokens': { type: 'int', default: 32, min: 1, max: 100000, help: 'most tokens to generate' },
      'max-seq-len': { type: 'int', min: 1, max: 100000, help: "lmp's limit: prompt (with BOS) + generated tokens <= max_seq_len" },
      k: { type: 'int', default: 5, min: 1, help: 'top-K: sample among the k most likely tokens' },
      p: { type: 'float', default: 0.9, min: 0, max: 1, help: 'top-P: nucleus mass' },
      temperature: { type: 'float', default: 1, min: 0, help: 'softmax temperature (0: greedy)' },
      'repetition-penalty': { type: 'float', default: 1, min: 0, help: 'CTRL-style penalty on seen tokens (1: off)' },
      stop: { type: 'string[]', help: 'stop string (repeatable)' },
      seed: { type: 'int', default: 42, help: 'random seed' },
      json: { type: 'boolean', default: false, help: 'print one JSON object at the end (model, checkpoint, text, finish_reason, usage) instead of streaming the text' },
      device: { type: 'string', default: 'cpu', choices: DEVICES, help: 'onnxruntime-node execution provider (webgpu: any Vulkan/Metal/D3D12 GPU; cuda: see the README)' },
    },
  },
  async run({ positionals, options: o }) {
    const prompt = readTxtOption(o.txt)
    const exp = openExperiment(o.expName)
    const { methodSampling } = await import('../infer/sampling.ts')
    const { generate } = await import('../infer/generate.ts')
    const { model, step } = await servingModel(exp, o.ckpt, o.device as Device)
    let maxNewTokens = o.maxNewTokens
    if (o.maxSeqLen !== undefined) {
      // lmp generates max_seq_len − (prompt tokens with BOS) + 1 tokens, nothing when the prompt is that long.
      const promptLen = exp.tokenizer.enc(prompt).length - 1
      maxNewTokens = Math.min(maxNewTokens, o.maxSeqLen - promptLen + 1)
      if (maxNewTokens <= 0) throw new LmpError(`the prompt is ${promptLen} tokens: nothing fits in --max-seq-len ${o.maxSeqLen}`)
    }
    const opts = {
      ...methodSampling(positionals[0], { k: o.k, p: o.p }),
      ...(positionals[0] !== 'top-1' && o.temperature !== 1 ? { temperature: o.temperature } : {}),
      repetitionPenalty: o.repetitionPenalty,
      stop: o.stop,
      seed: o.seed,
      maxNewTokens,
    }
    if (o.json) {
      let text = ''
      let completionTokens = 0
      let finish: string | undefined
      for await (const ev of generate(model, exp.tokenizer, prompt, opts)) {
        text += ev.textDelta
        completionTokens++
        if (ev.done) finish = ev.finishReason
      }
      // OpenAI's names: 'stop' for an end-of-sequence token or a stop string, 'length' for the token limit.
      const promptTokens = exp.tokenizer.enc(prompt).length - 1 // BOS and the prompt, as the model reads it
      console.log(JSON.stringify({
        model: exp.name,
        checkpoint: step,
        text,
        finish_reason: finish === 'length' ? 'length' : 'stop',
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      }))
    } else {
      // Stream to stdout as tokens come.
      for await (const ev of generate(model, exp.tokenizer, prompt, opts)) process.stdout.write(ev.textDelta)
      process.stdout.write('\n')
    }
    await model.release?.()
  },
}
