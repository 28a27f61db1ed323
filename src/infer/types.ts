// Runtime-agnostic contracts shared by the CLI, the server (onnxruntime-node) and the page (onnxruntime-web).
// Nothing here may import node: modules.

/** onnx/manifest.json, written by the exporter beside model.onnx. */
export interface Manifest {
  format: 'lmp-onnx'
  version: 1
  architecture: string // 'LSTM-2000', 'Transformer', ...
  model: string // file name of the graph, 'model.onnx'
  tokenizer: string // file name of lmp's tokenizer JSON beside it: 'lmp_tokenizer.json' ('tokenizer.json' in older exports)
  vocabSize: number
  specialTokens: { bos: number; eos: number; pad: number; unk: number }
  opset: number
  irVersion: number
  maxSeqLen: number | null // longest context the model accepts in one call (Transformer); null = unbounded
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  /** Carried state: each input is fed the matching output of the previous call. */
  state: { input: string; output: string; shape: (number | string)[]; concatAxis?: number }[]
  sha256: string // of model.onnx
  /** sha256 of this manifest's canonical JSON without this field (src/infer/manifest-check.ts); absent in older exports. */
  manifestSha256?: string
  config: Record<string, unknown> // the model options it was built from
}

export interface TensorSpec {
  name: string
  dtype: 'int64' | 'float32'
  shape: (number | string)[] // symbolic dims as strings: 'batch', 'sequence', 'past'
}

/**
 * The Transformer graph's int64 inputs (names as transformers.js and onnxruntime-genai use them):
 * `attention_mask` [batch, past+sequence], 1 where a key slot holds a token of the row, 0 where not, and
 * `position_ids` [batch, sequence]. All ones and past..past+sequence-1 for a lone row; rows whose caches
 * hold different numbers of tokens share a call with their caches aligned at the end (src/infer/batch.ts).
 */
export const ATTENTION_MASK = 'attention_mask'
export const POSITION_IDS = 'position_ids'

/** Carried state of a batch: one float32 array per manifest.state entry, with its shape. */
export type State = { data: Float32Array; dims: number[] }[]

/**
 * A loaded exported model in some ONNX runtime. `forward` feeds a batch of token rows
 * (all rows the same length) and the carried state, and returns logits for every position.
 */
export interface StepModel {
  manifest: Manifest
  initState(batch: number): State
  /**
   * `pastPadding` (one per row; models whose graph takes ATTENTION_MASK): how many of each row's first
   * cache slots hold no token of it. Zeros when not given.
   */
  forward(ids: number[][], state: State, pastPadding?: number[]): Promise<{ logits: Float32Array; state: State }>
  release?(): Promise<void>
}
