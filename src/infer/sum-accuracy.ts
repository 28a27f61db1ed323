// The demo's task measure: exact-match accuracy of greedy sums. Each demo sample "If you add a to b you get
// s ." is cut after "you get"; the model continues the prompt greedily, and the sample counts as right when
// the prompt and its continuation, up to the model's EOS, decode to the sample itself.
// Browser-safe: no node: imports.
import { LmpError } from '../errors.ts'
import { type Tokenizer } from '../tokenizer/index.ts'
import type { StepModel } from './types.ts'

/** The prompt of a demo sample: everything before the sum. */
export function sumPrompt(sample: string): string {
  const m = /^(If you add \d+ to \d+ you get) \d+ \.$/.exec(sample)
  if (!m) throw new LmpError(`not a demo sample: '${sample}'`)
  return m[1]
}

export interface SumAccuracy {
  correct: number
  total: number
  /** correct / total */
  accuracy: number
  /** The greedy text of every sample (prompt and continuation, special tokens dropped), in order. */
  texts: string[]
}

/**
 * Greedy continuations of every sample's prompt (at most `maxNewTokens` tokens, EOS ends a row), in batches
 * of rows whose prompts encode to the same length (a StepModel call takes rows of one length). Greedy:
 * the first highest logit, as temperature 0 generation picks it.
 */
export async function sumAccuracy(model: StepModel, tokenizer: Tokenizer, samples: string[], opts: { batchSize?: number; maxNewTokens?: number } = {}): Promise<SumAccuracy> {
  const batchSize = opts.batchSize ?? 256
  const maxNewTokens = opts.maxNewTokens ?? 8
  const vocab = model.manifest.vocabSize
  // The prompt's ids without the EOS that enc() appends, as generation feeds them.
  const prompts = samples.map((s) => tokenizer.enc(sumPrompt(s)).slice(0, -1))
  const byLength = new Map<number, number[]>()
  prompts.forEach((p, i) => byLength.set(p.length, [...(byLength.get(p.length) ?? []), i]))
  const generated: number[][] = samples.map(() => [])
  for (const rows of byLength.values()) {
    for (let at = 0; at < rows.length; at += batchSize) {
      const batch = rows.slice(at, at + batchSize)
      let state = model.initState(batch.length)
      let ids = batch.map((i) => prompts[i])
      const done = new Array<boolean>(batch.length).fill(false)
      for (let step = 0; step < maxNewTokens && done.includes(false); step++) {
        const out = await model.forward(ids, state)
        state = out.state
        const len = ids[0].length
        ids = batch.map((i, r) => {
          const base = (r * len + len - 1) * vocab
          let best = 0
          for (let v = 1; v < vocab; v++) if (out.logits[base + v] > out.logits[base + best]) best = v
          if (!done[r]) {
            if (best === tokenizer.specialIds.eos) done[r] = true
            else generated[i].push(best)
          }
          return [best]
        })
      }
      batch.forEach((i, r) => { if (!done[r]) generated[i].push(-1) }) // no EOS: never right
    }
  }
  const texts = samples.map((_, i) => tokenizer.dec([...prompts[i], ...generated[i].filter((id) => id >= 0)], { rmSpTks: true }))
  const correct = samples.filter((s, i) => !generated[i].includes(-1) && texts[i] === tokenizer.norm(s)).length
  return { correct, total: samples.length, accuracy: samples.length ? correct / samples.length : 0, texts }
}
