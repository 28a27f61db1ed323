// Every architecture the project trains and exports, each with tiny sizes, for the tests that run all of
// them on another runtime (WebGPU in the browser and in onnxruntime-node, TF.js on webgpu).
import type { ModelConfig } from '../../models/lm.ts'

export const ARCHITECTURES: { name: string; sizes: Partial<ModelConfig> }[] = [
  { name: 'LSTM-2000', sizes: { model: 'LSTM-2000' } },
  { name: 'LSTM-1997', sizes: { model: 'LSTM-1997' } },
  { name: 'LSTM-2002', sizes: { model: 'LSTM-2002' } },
  { name: 'Elman-Net', sizes: { model: 'Elman-Net' } },
  { name: 'GRU', sizes: { model: 'GRU' } },
  { name: 'Transformer', sizes: { model: 'Transformer', dModel: 8, nHead: 2, dFf: 16, nLyr: 2, maxSeqLen: 64 } },
]
