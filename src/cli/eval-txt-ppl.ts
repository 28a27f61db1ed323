// `lmp eval-txt-ppl`: perplexity of one text (onnxruntime-node).
import type { Command } from './index.ts'
import { DEVICES, type Device } from '../infer/device.ts'
import { LmpError } from '../errors.ts'
import { openExperiment, servingModel } from './common.ts'

export const command: Command = {
  spec: {
    name: 'eval-txt-ppl',
    summary: 'Perplexity of a text under a trained model (onnxruntime-node).',
    options: {
      'exp-name': { type: 'string', default: 'my_model_exp', help: 'model experiment' },
      ckpt: { type: 'int', default: -1, min: -1, help: 'checkpoint step (-1: latest)' },
      txt: { type: 'string', default: 'hello world', help: 'the text to score' },
      'per-token': { type: 'boolean', default: false, help: 'also print each token with its log-probability' },
      device: { type: 'string', default: 'cpu', choices: DEVICES, help: 'onnxruntime-node execution provider (webgpu: any Vulkan/Metal/D3D12 GPU; cuda: see the README)' },
    },
  },
  async run({ options: o }) {
    if (!o.txt) throw new LmpError('--txt must not be empty')
    const exp = openExperiment(o.expName)
    const { model } = await servingModel(exp, o.ckpt, o.device as Device)
    const { scoreText } = await import('../infer/perplexity.ts')
    const s = await scoreText(model, exp.tokenizer, o.txt, { perToken: o.perToken })
    if (o.perToken) {
      for (const t of s.perToken ?? []) console.log(`${JSON.stringify(exp.tokenizer.dec([t.tokenId]))}\t${t.logprob.toFixed(4)}`)
    }
    console.log(`ppl: ${s.ppl} (${s.natsPerToken.toFixed(4)} nats/token, ${s.bitsPerToken.toFixed(4)} bits/token, ${s.tokens} tokens)`)
    await model.release?.()
  },
}
