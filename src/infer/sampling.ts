// Choosing the next token from one row of logits. Each logits processor is a small function that edits
// a Float32Array in place (as transformers.js structures it); `pickToken` runs them in DESIGN.md's order:
// special-token mask → repetition penalty → temperature → top-k → top-p → draw.
// Browser-safe: no node: imports.
import { LmpError } from '../errors.ts'
import { BOS_ID, PAD_ID, UNK_ID } from '../tokenizer/index.ts'
import type { Rng } from './rng.ts'

export interface SamplingOptions {
  /** 0 = greedy; 1 = the model's distribution. Default 1. */
  temperature?: number
  /** Keep the k most likely tokens (ties with the k-th kept); 0 = off, 1 = greedy. Default 0. */
  topK?: number
  /** Nucleus: keep the smallest set whose probability reaches p, the crossing token included; 1 = off. */
  topP?: number
  /** CTRL-style penalty for tokens already in the prompt or the output; 1 = off. Default 1. */
  repetitionPenalty?: number
}

export type ResolvedSampling = Required<SamplingOptions>

/** lmp's inference method names (case-sensitive, as in lmp). */
export const METHODS = ['top-1', 'top-K', 'top-P'] as const
export type Method = (typeof METHODS)[number]

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** Fill in defaults and reject out-of-range values with a one-line LmpError. */
export function checkSampling(opts: SamplingOptions = {}): ResolvedSampling {
  const { temperature = 1, topK = 0, topP = 1, repetitionPenalty = 1 } = opts
  if (!isNum(temperature) || temperature < 0) throw new LmpError(`temperature must be a number >= 0, got ${temperature}`)
  if (!Number.isInteger(topK) || topK < 0) throw new LmpError(`top_k must be an integer >= 0, got ${topK}`)
  if (!isNum(topP) || topP <= 0 || topP > 1) throw new LmpError(`top_p must be a number in (0, 1], got ${topP}`)
  if (!isNum(repetitionPenalty) || repetitionPenalty <= 0) {
    throw new LmpError(`repetition_penalty must be a number > 0, got ${repetitionPenalty}`)
  }
  return { temperature, topK, topP, repetitionPenalty }
}

/**
 * lmp's methods as sampling options: top-1 = greedy; top-K = sample from the k most likely (k >= 1);
 * top-P = nucleus with p in [0, 1] (p = 0 keeps only the most likely token, as lmp's k = max(k, 1) does).
 * Unlike lmp, top-P keeps the token that crosses p (DESIGN.md).
 */
export function methodSampling(method: string, params: { k?: number; p?: number } = {}): SamplingOptions {
  const { k = 5, p = 0.9 } = params
  switch (method) {
    case 'top-1':
      return { temperature: 0 }
    case 'top-K':
      if (!Number.isInteger(k) || k < 1) throw new LmpError(`k must be an integer >= 1, got ${k}`)
      return { topK: k }
    case 'top-P':
      if (!isNum(p) || p < 0 || p > 1) throw new LmpError(`p must be a number in [0, 1], got ${p}`)
      return p === 0 ? { topK: 1 } : { topP: p }
    default:
      throw new LmpError(`unknown inference method '${method}': must be one of ${METHODS.join(', ')}`)
  }
}

/** True when the options always pick the argmax. */
export const isGreedy = (o: ResolvedSampling) => o.temperature === 0 || o.topK === 1

/** The ids never generated (src/tokenizer/special.ts neverGenerated): BOS, PAD and UNK, lmp's unless given. EOS
 * is generated: it ends the generation. */
export function maskSpecialTokens(logits: Float32Array, banned: readonly number[] = [BOS_ID, PAD_ID, UNK_ID]): void {
  for (const id of banned) if (id < logits.length) logits[id] = -Infinity
}

/** CTRL (Keskar et al. 2019) as transformers does it: a seen token's logit is divided by the penalty if
 * positive, multiplied if negative, so penalty > 1 always makes it less likely. */
export function applyRepetitionPenalty(logits: Float32Array, seenIds: Iterable<number>, penalty: number): void {
  if (penalty === 1) return
  for (const id of seenIds) {
    if (id < 0 || id >= logits.length) continue
    const x = logits[id]
    logits[id] = x > 0 ? x / penalty : x * penalty
  }
}

/**
 * Divide the logits by the temperature, after shifting them so that the largest is 0 (softmax does not
 * change). Divided as they are, float32 logits overflow to ±Infinity once the temperature is tiny (1e-39
 * makes every positive logit +Infinity: a uniform draw among them); shifted, the largest stays 0 and the
 * others only go towards -Infinity, so any temperature > 0 tends to greedy as it shrinks, as the limit says.
 */
export function applyTemperature(logits: Float32Array, temperature: number): void {
  if (temperature === 1) return
  const max = maxOf(logits)
  if (!Number.isFinite(max)) return // all masked (or an infinite logit, which already takes all the weight)
  for (let i = 0; i < logits.length; i++) logits[i] = (logits[i] - max) / temperature
}

/** Keep the k largest logits; a logit equal to the k-th largest is kept too (as transformers does). */
export function applyTopK(logits: Float32Array, k: number): void {
  if (k <= 0 || k >= logits.length) return
  const kth = logits.slice().sort()[logits.length - k] // typed-array sort is numeric
  for (let i = 0; i < logits.length; i++) if (logits[i] < kth) logits[i] = -Infinity
}

/** Nucleus: sort by probability (ties: lower id first) and keep the smallest prefix whose mass reaches p,
 * including the token that crosses p. */
export function applyTopP(logits: Float32Array, p: number): void {
  if (p >= 1) return
  const probs = softmax(logits)
  // Walk the probabilities from the largest down (a numeric typed-array sort, fast for big vocabularies)
  // until the mass reaches p; `threshold` is the crossing token's probability, `kept` the set's size.
  const sorted = probs.slice().sort()
  let mass = 0
  let kept = 0
  let threshold = 0
  while (kept < sorted.length && mass < p) mass += threshold = sorted[sorted.length - 1 - kept++]
  let placed = 0
  for (let i = 0; i < probs.length; i++) if (probs[i] > threshold) placed++
  // Tokens tied with the crossing one: the lower ids fill the remaining places.
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] > threshold) continue
    if (probs[i] === threshold && placed < kept) placed++
    else logits[i] = -Infinity
  }
}

/** The index of the largest logit; the first index wins ties. */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i
  return best
}

/** exp(logits - max) in float64 and their sum. A logit of +Infinity (a tiny temperature can overflow)
 * takes all the weight instead of turning the row into NaN. */
function expWeights(logits: ArrayLike<number>): { weights: Float64Array; total: number } {
  const max = maxOf(logits)
  const weights = new Float64Array(logits.length)
  let total = 0
  for (let i = 0; i < logits.length; i++) {
    total += weights[i] = max === Infinity ? (logits[i] === Infinity ? 1 : 0) : Math.exp(logits[i] - max)
  }
  return { weights, total }
}

/** Softmax in float64 (masked -Infinity logits get probability 0). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const { weights, total } = expWeights(logits)
  for (let i = 0; i < weights.length; i++) weights[i] /= total
  return weights
}

/** Draw an index with probability softmax(logits), using one uniform draw from rng. */
export function drawFromLogits(logits: ArrayLike<number>, rng: Rng): number {
  const { weights, total } = expWeights(logits)
  const u = rng.next() * total
  let acc = 0
  let last = 0
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 0) continue
    acc += weights[i]
    last = i
    if (u < acc) return i
  }
  return last // only reached through rounding in the running sum
}

/**
 * The whole pipeline on a copy of one logits row: mask the `banned` ids (BOS/PAD/UNK, maskSpecialTokens),
 * repetition penalty over `seenIds`, then greedy argmax, or temperature → top-k → top-p → draw.
 */
export function pickToken(row: ArrayLike<number>, opts: ResolvedSampling, seenIds: Iterable<number>, rng: Rng, banned?: readonly number[]): number {
  const logits = new Float32Array(row) // a copy (Float32Array.from walks an iterator: ~10× slower)
  maskSpecialTokens(logits, banned)
  applyRepetitionPenalty(logits, seenIds, opts.repetitionPenalty)
  if (isGreedy(opts)) return argmax(logits)
  applyTemperature(logits, opts.temperature)
  applyTopK(logits, opts.topK)
  applyTopP(logits, opts.topP)
  return drawFromLogits(logits, rng)
}

function maxOf(xs: ArrayLike<number>): number {
  let max = -Infinity
  for (let i = 0; i < xs.length; i++) if (xs[i] > max) max = xs[i]
  return max
}

/** log(sum(exp(row))), computed stably in float64. */
export function logSumExp(row: ArrayLike<number>): number {
  const max = maxOf(row)
  if (max === -Infinity) return -Infinity
  let sum = 0
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max)
  return max + Math.log(sum)
}

/** Natural-log probabilities of a logits row. */
export function logSoftmax(row: ArrayLike<number>): Float64Array {
  const lse = logSumExp(row)
  const out = new Float64Array(row.length)
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse
  return out
}

export interface TokenLogprob {
  tokenId: number
  logprob: number
}

/** The n most likely tokens of a row with their natural-log probabilities (ties: lower id first). */
export function topLogprobs(row: ArrayLike<number>, n: number, lse = logSumExp(row)): TokenLogprob[] {
  // A small sorted buffer: O(V·n) at worst, and n is small (OpenAI allows 5).
  const count = Math.min(Math.max(0, n), row.length)
  const top: number[] = []
  for (let i = 0; i < row.length && count > 0; i++) {
    if (top.length === count && !(row[i] > row[top[count - 1]])) continue
    let at = top.length
    while (at > 0 && row[i] > row[top[at - 1]]) at--
    top.splice(at, 0, i)
    if (top.length > count) top.pop()
  }
  return top.map((tokenId) => ({ tokenId, logprob: row[tokenId] - lse }))
}
