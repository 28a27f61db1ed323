// Messages between the page (main.ts) and the inference worker (worker.ts).
import type { GenerateOptions } from '../src/infer/generate.ts'

export type Provider = 'wasm' | 'webgpu'

/** The jobs the worker runs one at a time; an error names the job it ended. */
export type Job = 'load' | 'generate' | 'score' | 'embedding' | 'attention'

export type ToWorker =
  /** Load the exported model folder at `base` (a URL ending in '/', holding manifest.json). */
  | { type: 'load'; base: string; executionProvider?: Provider; threads?: number }
  /** Load a model folder the user opened from disk (the three files' bytes, transferred). */
  | { type: 'load-files'; name: string; manifest: ArrayBuffer; model: ArrayBuffer; tokenizer: ArrayBuffer; executionProvider?: Provider; threads?: number }
  | { type: 'generate'; prompt: string; options: GenerateOptions }
  | { type: 'stop' }
  /** Perplexity of a text with each token's log-probability and `alternatives` most likely tokens. */
  | { type: 'score'; text: string; alternatives: number }
  /** Nearest neighbours by cosine similarity: of `a`, or of a − b + c when b and c are given. */
  | { type: 'embedding'; a: string; b?: string; c?: string; count: number }
  /** Attention weights of every layer and head over the first tokens of a text (Transformer models). */
  | { type: 'attention'; text: string }

/** A token with its log-probability. `text` is how it reads in the text; `token` is dec([id]) alone. */
export interface ScoredToken {
  id: number
  token: string
  text: string
  /** BOS, EOS, PAD or UNK (the tokenizer's specialIds). */
  special: boolean
  logprob: number
  top: { id: number; token: string; logprob: number }[]
}

export type FromWorker =
  | { type: 'progress'; file: string; loaded: number; total: number | null; cached: boolean }
  | {
      type: 'ready'
      name: string
      architecture: string
      vocabSize: number
      /** The execution provider in use ('wasm' or 'webgpu') and WASM threads. */
      backend: Provider
      /** On WebGPU: the adapter's name, and whether it is a fallback (software) adapter. */
      adapter?: { name: string; fallback: boolean }
      threads: number
      cached: boolean
      /** Attention layers the graph outputs (`attentions.{i}`); 0 when it has none. */
      attentionLayers: number
    }
  /** Sent before a generation's tokens: the prompt as the model reads it, its tokens' own texts joined
   * (src/tokenizer/pieces.ts), which the generated text continues. */
  | { type: 'prompt'; text: string }
  | { type: 'token'; text: string; tokenId: number }
  | { type: 'done'; finishReason: string; tokens: number; seconds: number; firstTokenSeconds: number | null }
  | {
      type: 'scored'
      tokens: ScoredToken[]
      count: number
      perplexity: number
      natsPerToken: number
      bitsPerToken: number
      nll: number
      seconds: number
    }
  | {
      type: 'neighbours'
      /** 'a' or 'a − b + c', as resolved to tokens. */
      query: string
      matrix: { name: string; rows: number; dims: number }
      items: { id: number; token: string; cosine: number }[]
    }
  | {
      type: 'attention'
      /** The input tokens, as they read (BOS first). */
      tokens: string[]
      /** The text had more tokens than shown. */
      truncated: boolean
      heads: number
      /** One [heads, n, n] array per layer: row = query position, column = key position. */
      layers: Float32Array[]
    }
  | { type: 'error'; message: string; job?: Job }
