// The seam between the HTTP routes and the model: routes ask an Engine for a stream of token events or a
// score. The direct engine runs one generation per request; a batching engine (requests sharing
// session.run calls along the batch axis) can replace it without touching the routes.
import type { GenerateOptions, GenerationEvent } from '../src/infer/generate.ts'
import type { Score } from '../src/infer/perplexity.ts'
import type { ServedModel } from './models.ts'

export type GenerationParams = GenerateOptions
export type TokenEvent = GenerationEvent
export type ScoreResult = Score

export interface Engine {
  generate(m: ServedModel, prompt: string, params: GenerationParams, signal: AbortSignal): AsyncIterable<TokenEvent>
  score(m: ServedModel, text: string, opts: { perToken: boolean; alternatives?: number }, signal: AbortSignal): Promise<ScoreResult>
  /** Resolves when nothing is running (graceful shutdown). */
  idle(): Promise<void>
  /** Requests in flight (queue depth for /metrics). */
  readonly active: number
}

/** One request, one generation loop; model calls of concurrent requests interleave on the session. */
export function createDirectEngine(): Engine {
  let active = 0
  let waiters: (() => void)[] = []
  const enter = () => { active++ }
  const leave = () => {
    active--
    if (active === 0) { for (const w of waiters) w(); waiters = [] }
  }
  return {
    get active() { return active },
    async *generate(m, prompt, params, signal) {
      const { generate } = await import('../src/infer/generate.ts')
      enter()
      try {
        for await (const ev of generate(m.model, m.tokenizer, prompt, params)) {
          if (signal.aborted) return
          yield ev
          if (signal.aborted) return
        }
      } finally {
        leave()
      }
    },
    async score(m, text, opts, signal) {
      const { scoreText } = await import('../src/infer/perplexity.ts')
      enter()
      try {
        signal.throwIfAborted()
        return await scoreText(m.model, m.tokenizer, text, { perToken: opts.perToken, alternatives: opts.alternatives })
      } finally {
        leave()
      }
    },
    idle() {
      return active === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))
    },
  }
}
