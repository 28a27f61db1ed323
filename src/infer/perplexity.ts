// Perplexity as DESIGN.md defines it: exp(mean negative log-likelihood over predicted tokens). Every token
// after BOS is a target (EOS included); BOS is never one and PAD targets are ignored.
// Long texts: recurrent models (manifest.maxSeqLen null) are fed in chunks that carry the state, which
// equals one call over the whole text; the Transformer, whose positions end at maxSeqLen, uses a sliding
// window with a stride (as transformers' perplexity guide does): each token is scored once, by the window
// that first reaches it, with at least window − stride tokens of context.
// Browser-safe: no node: imports.
import { LmpError } from '../errors.ts'
import { specialIdsOf, type TextCodec } from './generate.ts'
import { logSumExp, topLogprobs, type TokenLogprob } from './sampling.ts'
import type { StepModel } from './types.ts'

export interface TokenScore {
  tokenId: number
  /** ln p(token | what precedes it) */
  logprob: number
  /** The most likely tokens at this position, when asked for. */
  top?: TokenLogprob[]
}

export interface Score {
  /** Number of predicted tokens (the denominator). */
  tokens: number
  /** Total negative log-likelihood, in nats. */
  nll: number
  natsPerToken: number
  bitsPerToken: number
  ppl: number
  /** One entry per predicted token, in text order (scoreText with perToken). */
  perToken?: TokenScore[]
}

export interface WindowOptions {
  /** Tokens per model call: the sliding window (Transformer; default and maximum maxSeqLen) or the chunk
   * that carries the state (recurrent; any size gives the same result, only memory changes). */
  window?: number
  /** Transformer: the step between window starts, 1..window (default half the window). */
  stride?: number
}

export interface ScoreTextOptions extends WindowOptions {
  perToken?: boolean
  /** With perToken: list this many most likely tokens at each position. */
  alternatives?: number
}

export interface ScoreTextsOptions extends WindowOptions {
  /** Rows per model call (default 32, lmp's eval batch size). */
  batchSize?: number
  /** Called with the number of texts scored so far. */
  onProgress?: (done: number) => void
}

/** One model row: `inputs[j]` predicts `targets[j]`; only positions j >= from are scored. */
interface Segment {
  inputs: number[]
  targets: number[]
  from: number
}

interface Plan {
  window: number
  stride: number
  sliding: boolean
}

function plan(model: StepModel, opts: WindowOptions, rows: number): Plan {
  const maxSeqLen = model.manifest.maxSeqLen
  const { window, stride } = opts
  if (window !== undefined && (!Number.isInteger(window) || window < 1)) {
    throw new LmpError(`window must be an integer >= 1, got ${window}`)
  }
  if (maxSeqLen === null) {
    // Bound the logits of one call (rows × chunk × vocab floats) to about 16 MiB.
    const chunk = Math.max(16, Math.min(1024, Math.floor(2 ** 22 / (rows * model.manifest.vocabSize))))
    return { window: window ?? chunk, stride: 0, sliding: false }
  }
  if (window !== undefined && window > maxSeqLen) {
    throw new LmpError(`window must be at most the model's context (${maxSeqLen}), got ${window}`)
  }
  const w = window ?? maxSeqLen
  const s = stride ?? Math.max(1, Math.floor(w / 2))
  if (!Number.isInteger(s) || s < 1 || s > w) throw new LmpError(`stride must be an integer in [1, ${w}], got ${s}`)
  return { window: w, stride: s, sliding: true }
}

/** The rows that score one encoded text. */
function segmentsOf(ids: number[], p: Plan): Segment[] {
  const targets = ids.length - 1
  if (!p.sliding || targets <= p.window) return [{ inputs: ids.slice(0, -1), targets: ids.slice(1), from: 0 }]
  const segments: Segment[] = []
  let scoredUpTo = 0
  for (let start = 0; scoredUpTo < targets; start += p.stride) {
    // The last window is moved back so that it is full length: more context for the last tokens.
    const begin = Math.min(start, targets - p.window)
    const end = begin + p.window
    segments.push({ inputs: ids.slice(begin, end), targets: ids.slice(begin + 1, end + 1), from: scoredUpTo - begin })
    scoredUpTo = end
  }
  return segments
}

class Tally {
  nll = 0
  tokens = 0
  perToken?: TokenScore[]
  /** `pad`: the tokenizer's PAD id; a PAD target is not scored. */
  constructor(readonly pad: number, perToken: boolean, private readonly alternatives = 0) {
    if (perToken) this.perToken = []
  }

  add(tokenId: number, row: Float32Array): void {
    if (tokenId === this.pad) return
    const lse = logSumExp(row)
    const logprob = row[tokenId] - lse
    this.nll -= logprob
    this.tokens++
    if (this.perToken) {
      const entry: TokenScore = { tokenId, logprob }
      if (this.alternatives > 0) entry.top = topLogprobs(row, this.alternatives, lse)
      this.perToken.push(entry)
    }
  }

  score(): Score {
    if (this.tokens === 0) throw new LmpError('nothing to score: no predicted tokens')
    const natsPerToken = this.nll / this.tokens
    const out: Score = {
      tokens: this.tokens,
      nll: this.nll,
      natsPerToken,
      bitsPerToken: natsPerToken / Math.LN2,
      ppl: Math.exp(natsPerToken),
    }
    if (this.perToken) out.perToken = this.perToken
    return out
  }
}

/** Feed a batch of segments (padded at the end with the tokenizer's PAD: causal models' earlier logits do not change),
 * `chunk` positions per call with the state carried, and tally the scored positions in row order. */
async function runSegments(model: StepModel, segments: Segment[], chunk: number, tally: Tally): Promise<void> {
  const longest = Math.max(...segments.map((s) => s.inputs.length))
  let state = model.initState(segments.length)
  for (let t = 0; t < longest; t += chunk) {
    const len = Math.min(chunk, longest - t)
    const rows = segments.map((s) => {
      const row = s.inputs.slice(t, t + len)
      while (row.length < len) row.push(tally.pad)
      return row
    })
    const out = await model.forward(rows, state)
    state = out.state
    const vocab = out.logits.length / (rows.length * len)
    segments.forEach((s, b) => {
      for (let j = Math.max(t, s.from); j < Math.min(t + len, s.inputs.length); j++) {
        const at = (b * len + (j - t)) * vocab
        tally.add(s.targets[j], out.logits.subarray(at, at + vocab))
      }
    })
  }
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new LmpError(`batch_size must be an integer >= 1, got ${batchSize}`)
}

/**
 * Score one text: enc(text) = [BOS, ..., EOS]; every token after BOS is predicted. Given token ids instead
 * of a text, every id after the first is predicted (an echoed prompt: [BOS, ...prompt], no EOS).
 */
export async function scoreText(
  model: StepModel,
  tokenizer: TextCodec,
  text: string | readonly number[],
  opts: ScoreTextOptions = {},
): Promise<Score> {
  const p = plan(model, opts, 1)
  const tally = new Tally(specialIdsOf(tokenizer).pad, opts.perToken ?? false, opts.alternatives)
  const ids = typeof text === 'string' ? tokenizer.enc(text) : text.slice()
  // Sliding windows are independent rows; they go through one at a time so that memory stays at one window.
  for (const segment of segmentsOf(ids, p)) await runSegments(model, [segment], p.window, tally)
  return tally.score()
}

/** Whole-dataset perplexity: total NLL over total predicted tokens, texts batched `batchSize` rows a call. */
export async function scoreTexts(
  model: StepModel,
  tokenizer: TextCodec,
  texts: Iterable<string> | AsyncIterable<string>,
  opts: ScoreTextsOptions = {},
): Promise<Score> {
  const { batchSize = 32, onProgress } = opts
  checkBatchSize(batchSize)
  const p = plan(model, opts, batchSize)
  const tally = new Tally(specialIdsOf(tokenizer).pad, false)
  let done = 0
  let group: string[] = []
  const flush = async () => {
    const segments = group.flatMap((text) => segmentsOf(tokenizer.enc(text), p))
    for (let i = 0; i < segments.length; i += batchSize) {
      await runSegments(model, segments.slice(i, i + batchSize), p.window, tally)
    }
    done += group.length
    group = []
    onProgress?.(done)
  }
  for await (const text of texts) {
    group.push(text)
    if (group.length === batchSize) await flush()
  }
  if (group.length > 0) await flush()
  if (done === 0) throw new LmpError('nothing to score: no texts')
  return tally.score()
}
