// Messages between the page (main.ts) and the inference worker (worker.ts).
import type { GenerateOptions } from '../src/infer/generate.ts'

export type ToWorker =
  /** Load the exported model folder at `base` (a URL ending in '/', holding manifest.json). */
  | { type: 'load'; base: string; executionProvider?: 'wasm' | 'webgpu' }
  | { type: 'generate'; prompt: string; options: GenerateOptions }
  | { type: 'stop' }

export type FromWorker =
  | { type: 'progress'; file: string; loaded: number; total: number | null; cached: boolean }
  | {
      type: 'ready'
      name: string
      architecture: string
      vocabSize: number
      /** The execution provider in use ('wasm' or 'webgpu') and WASM threads. */
      backend: string
      threads: number
      cached: boolean
    }
  | { type: 'token'; text: string; tokenId: number }
  | { type: 'done'; finishReason: string; tokens: number; seconds: number; firstTokenSeconds: number | null }
  | { type: 'error'; message: string }
