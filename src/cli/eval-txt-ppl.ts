// `lmp eval-txt-ppl`: perplexity of one text (onnxruntime-node).
import type { Command } from './index.ts'
import { DEVICES, type Device } from '../infer/device.ts'
import { LmpError } from '../errors.ts'
import { openExperiment, servingModel } from './common.ts'
import { readTxtOption } from './io.ts'
import { tokenPieces } from '../tokenizer/pieces.ts'

export const command: Command = {
  spec: {
    name: 'eval-txt-ppl',
    summary: 'Perplexity of a text under a trained model (onnxruntime-node).',
    options: {
      'exp-name': { type: 'string', default: 'my_model_exp', help: 'model experiment' },
      ckpt: { type: 'int', default: -1, min: -1, help: 'checkpoint step (-1: latest)' },
      txt: { type: 'string', default: 'hello world', help: "the text to score ('-': read it from standard input)" },
      'per-token': { type: 'boolean', default: false, help: 'also print each token with its log-probability' },
      json: { type: 'boolean', default: false, help: 'print one JSON object (the shape of POST /v1/perplexity) instead of text' },
      device: { type: 'string', default: 'cpu', choices: DEVICES, help: 'onnxruntime-node execution provider (webgpu: any Vulkan/Metal/D3D12 GPU; cuda: see the README)' },
    },
  },
  async run({ options: o }) {
    const txt = readTxtOption(o.txt)
    if (!txt) throw new LmpError(o.txt === '-' ? '--txt -: standard input is empty' : '--txt must not be empty')
    const exp = openExperiment(o.expName)
    const { model, step } = await servingModel(exp, o.ckpt, o.device as Device)
    const { scoreText } = await import('../infer/perplexity.ts')
    const s = await scoreText(model, exp.tokenizer, txt, { perToken: o.perToken })
    await model.release?.()
    // Each scored token's own text (a space is ' '), as the page and tknz-txt --json show it. The scored
    // tokens are the targets ids[1..] but PAD.
    const ids = exp.tokenizer.enc(txt)
    const pieces = tokenPieces(exp.tokenizer, ids).filter((_, i) => i > 0 && ids[i] !== exp.tokenizer.specialIds.pad)
    if (o.json) {
      console.log(JSON.stringify({
        object: 'perplexity',
        model: exp.name,
        checkpoint: step,
        tokens: s.tokens,
        nats_per_token: s.natsPerToken,
        bits_per_token: s.bitsPerToken,
        perplexity: s.ppl,
        total_nll: s.nll,
        ...(s.perToken ? { per_token: s.perToken.map((t, i) => ({ token_id: t.tokenId, token: pieces[i], logprob: t.logprob })) } : {}),
      }))
      return
    }
    if (o.perToken) {
      s.perToken?.forEach((t, i) => console.log(`${JSON.stringify(pieces[i])}\t${t.logprob.toFixed(4)}`))
    }
    console.log(`ppl: ${s.ppl} (${s.natsPerToken.toFixed(4)} nats/token, ${s.bitsPerToken.toFixed(4)} bits/token, ${s.tokens} tokens)`)
  },
}
