// Model options of `lmp train-model` and `lmp demo`: lmp's names, and how they become a model config.
import type { OptionSpec } from './args.ts'

export const MODELS = ['Elman-Net', 'GRU', 'LSTM-1997', 'LSTM-2000', 'LSTM-2002'] as const

/** Model options, lmp's names. Defaults are sized to learn something (lmp's are all 1). */
export const MODEL_OPTIONS: Record<string, OptionSpec> = {
  'd-emb': { type: 'int', default: 64, min: 1, help: 'embedding size' },
  'd-hid': { type: 'int', default: 128, min: 1, help: 'hidden size (Elman-Net, GRU)' },
  'n-blk': { type: 'int', default: 128, min: 1, help: 'memory cell blocks (LSTMs)' },
  'd-blk': { type: 'int', default: 1, min: 1, help: 'units per block (LSTMs); hidden size = n_blk × d_blk' },
  'n-lyr': { type: 'int', default: 1, min: 1, help: 'recurrent layers' },
  'p-emb': { type: 'float', default: 0, min: 0, max: 0.99, help: 'dropout on embeddings' },
  'p-hid': { type: 'float', default: 0, min: 0, max: 0.99, help: 'dropout on hidden layers' },
  'init-lower': { type: 'float', default: -0.1, help: 'uniform init, lower bound' },
  'init-upper': { type: 'float', default: 0.1, help: 'uniform init, upper bound' },
  'init-ib': { type: 'float', default: -1, max: 0, help: 'LSTM input-gate bias init range [init_ib, 0]' },
  'init-ob': { type: 'float', default: -1, max: 0, help: 'LSTM output-gate bias init range [init_ob, 0]' },
  'init-fb': { type: 'float', default: 1, min: 0, help: 'LSTM forget-gate bias init range [0, init_fb]' },
  'label-smoothing': { type: 'float', default: 0, min: 0, max: 0.99, help: 'label smoothing of the loss' },
}


/** The model config (models/lm.ts) of parsed options. */
export function modelConfigFromOptions(model: string, vocabSize: number, o: Record<string, any>) {
  return {
    model,
    vocabSize,
    dEmb: o.dEmb, dHid: o.dHid, nBlk: o.nBlk, dBlk: o.dBlk, nLyr: o.nLyr, pEmb: o.pEmb, pHid: o.pHid,
    initLower: o.initLower, initUpper: o.initUpper, initIb: o.initIb, initOb: o.initOb, initFb: o.initFb,
    labelSmoothing: o.labelSmoothing,
  }
}
