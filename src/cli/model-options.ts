// Model options of `lmp train-model` and `lmp demo`: lmp's names, and how they become a model config.
import { UsageError, type OptionSpec } from './args.ts'

export const MODELS = ['Elman-Net', 'GRU', 'LSTM-1997', 'LSTM-2000', 'LSTM-2002', 'Transformer', 'Transformer-encoder'] as const

/** Model options, lmp's names. Defaults are sized to learn something (lmp's are all 1). */
export const MODEL_OPTIONS: Record<string, OptionSpec> = {
  'd-emb': { type: 'int', default: 64, min: 1, help: 'embedding size' },
  'd-hid': { type: 'int', default: 128, min: 1, help: 'hidden size (Elman-Net, GRU)' },
  'n-blk': { type: 'int', default: 128, min: 1, help: 'memory cell blocks (LSTMs)' },
  'd-blk': { type: 'int', default: 1, min: 1, help: 'units per block (LSTMs); hidden size = n_blk × d_blk' },
  'n-lyr': { type: 'int', default: 1, min: 1, help: 'layers (recurrent layers, or Transformer blocks)' },
  'p-emb': { type: 'float', default: 0, min: 0, max: 0.99, help: 'dropout on embeddings' },
  'p-hid': { type: 'float', default: 0, min: 0, max: 0.99, help: 'dropout on hidden layers' },
  'init-lower': { type: 'float', default: -0.1, help: 'uniform init, lower bound' },
  'init-upper': { type: 'float', default: 0.1, help: 'uniform init, upper bound' },
  'init-ib': { type: 'float', default: -1, max: 0, help: 'LSTM input-gate bias init range [init_ib, 0]' },
  'init-ob': { type: 'float', default: -1, max: 0, help: 'LSTM output-gate bias init range [init_ob, 0]' },
  'init-fb': { type: 'float', default: 1, min: 0, help: 'LSTM forget-gate bias init range [0, init_fb]' },
  'd-model': { type: 'int', default: 128, min: 1, help: 'Transformer: model width (a multiple of n_head)' },
  'n-head': { type: 'int', default: 4, min: 1, help: 'Transformer: attention heads' },
  'd-ff': { type: 'int', default: 512, min: 1, help: 'Transformer: feed-forward width' },
  'd-k': { type: 'int', min: 1, help: "Transformer: head size (lmp's option; must equal d_model / n_head)" },
  'd-v': { type: 'int', min: 1, help: "Transformer: value head size (lmp's option; must equal d_model / n_head)" },
  p: { type: 'float', default: 0, min: 0, max: 0.99, help: 'Transformer: dropout (embeddings, attention, residual branches)' },
  activation: { type: 'string', default: 'gelu', choices: ['gelu', 'relu'], help: 'Transformer: feed-forward activation' },
  layout: { type: 'string', default: 'pre-ln', choices: ['pre-ln', 'post-ln'], help: "Transformer: pre-LN with a final LayerNorm (GPT-2), or lmp's post-LN" },
  positions: { type: 'string', default: 'learned', choices: ['learned', 'sinusoidal'], help: 'Transformer: position embeddings' },
  'label-smoothing': { type: 'float', default: 0, min: 0, max: 0.99, help: 'label smoothing of the loss' },
}


/**
 * The model config (models/lm.ts) of parsed options. The Transformer's positions are the training
 * context `--max-seq-len` (as lmp fills in its max_seq_len).
 */
export function modelConfigFromOptions(model: string, vocabSize: number, o: Record<string, any>) {
  for (const k of ['dK', 'dV'] as const) {
    if (o[k] !== undefined && o[k] * o.nHead !== o.dModel) {
      throw new UsageError(`--${k === 'dK' ? 'd-k' : 'd-v'} must equal d_model / n_head (${o.dModel / o.nHead}), got ${o[k]}`)
    }
  }
  return {
    model,
    vocabSize,
    dEmb: o.dEmb, dHid: o.dHid, nBlk: o.nBlk, dBlk: o.dBlk, nLyr: o.nLyr, pEmb: o.pEmb, pHid: o.pHid,
    initLower: o.initLower, initUpper: o.initUpper, initIb: o.initIb, initOb: o.initOb, initFb: o.initFb,
    dModel: o.dModel, nHead: o.nHead, dFf: o.dFf, p: o.p, maxSeqLen: o.maxSeqLen,
    activation: o.activation, layout: o.layout, positions: o.positions,
    labelSmoothing: o.labelSmoothing,
  }
}
