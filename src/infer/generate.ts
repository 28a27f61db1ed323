// Text generation. `Generation` is the per-request state machine (prompt ids, sampling, streamed text,
// stop strings, finish reason) that knows nothing of the runtime, so a batching server can drive many
// of them with shared model calls; `generate`/`generateText` drive one with a StepModel.
// Browser-safe: no node: imports.
import { LmpError } from '../errors.ts'
import { LMP_SPECIAL_IDS, neverGenerated, type SpecialIds, type Tokenizer } from '../tokenizer/index.ts'
import { tokenTextDecoder, topLogprobsObject, type TokenTextDecoder } from '../tokenizer/pieces.ts'
import { createRng, randomSeed, type Rng } from './rng.ts'
import { checkSampling, logSumExp, pickToken, topLogprobs, type ResolvedSampling, type TokenLogprob } from './sampling.ts'
import type { StepModel } from './types.ts'

/** The part of a tokenizer that generation uses (`specialIds`: lmp's when absent). */
export type TextCodec = Pick<Tokenizer, 'enc' | 'dec'> & { readonly specialIds?: SpecialIds }

/** The codec's special ids; lmp's for a codec that has none (a test's bare codec). */
export const specialIdsOf = (tokenizer: TextCodec): SpecialIds => tokenizer.specialIds ?? LMP_SPECIAL_IDS

export interface GenerateOptions {
  maxNewTokens: number
  temperature?: number
  topK?: number
  topP?: number
  repetitionPenalty?: number
  /** Same seed and options → same tokens, in Node and in the browser. Default: a random seed. */
  seed?: number
  /** The output is cut before the first occurrence of any of these. */
  stop?: string[]
  /** When set, each event carries the chosen token's log-probability and this many top alternatives. */
  logprobs?: number
  /** The model's context limit (manifest.maxSeqLen); generate() takes it from the model. */
  maxSeqLen?: number | null
}

/** 'eos': the model ended the text; 'stop': a stop string; 'length': max_new_tokens. */
export type FinishReason = 'stop' | 'length' | 'eos'

export interface GenerationEvent {
  tokenId: number
  /** New text since the previous event; all deltas concatenated equal the generation's final text. */
  textDelta: string
  done: boolean
  finishReason?: FinishReason
  /** This token's own text (src/tokenizer/pieces.ts): the texts of all tokens, joined, are the text as
   * generated, before a stop string cuts it. */
  token: string
  /** ln p(token) under the model's own distribution (before temperature, top-k, ...), when asked for. */
  logprob?: number
  topLogprobs?: TokenLogprob[]
  /** The same alternatives and the chosen token as OpenAI's top_logprobs object: keyed by their texts at
   * this position, never two under one key (src/tokenizer/pieces.ts topLogprobsObject). */
  topLogprobsByText?: Record<string, number>
}

// The output is decoded together with the tokens before it (the prompt's last tokens at first), because
// dec strips its ends: so `text` is the continuation as it reads after the prompt (' 3' after 'you get').
// Decoding the whole output at every step would cost O(n) per token (NFKC, whitespace regexes), so the
// output is committed in blocks: only the tokens after the last committed block are decoded, with the
// CONTEXT tokens before them (whitespace collapsing and NFKC composition only reach across neighbours).
const CONTEXT = 8
const BLOCK = 8
// A tokenizer of the four kinds gives each token's own text (src/tokenizer/pieces.ts), and the output is
// those texts joined. Other codecs (tests' bare enc/dec) are decoded as follows.
// What a byte-level tokenizer decodes an incomplete UTF-8 sequence to; held back until the next token.
const TRAILING_REPLACEMENTS = /\uFFFD+$/

export class Generation {
  /** enc(prompt) without its final EOS (BOS kept), or the prompt's ids after a BOS: what the first model
   * call is fed. */
  readonly promptIds: number[]
  /** Each prompt token's own text (BOS's is ''), when the tokenizer is one of the four kinds. */
  readonly promptTexts: string[] | null
  /** Every sampled token, the final EOS included. */
  readonly tokenIds: number[] = []
  readonly seed: number
  /** The text streamed so far (the final text once done). */
  text = ''
  done = false
  finishReason?: FinishReason

  private readonly tokenizer: TextCodec
  private readonly specials: SpecialIds
  private readonly banned: number[]
  private readonly sampling: ResolvedSampling
  private readonly rng: Rng
  private readonly maxNewTokens: number
  private readonly maxSeqLen: number | null
  private readonly stop: string[]
  private readonly logprobs?: number
  private readonly seen: Set<number> // prompt and output ids, for the repetition penalty
  private contextIds: number[] // the CONTEXT ids before the first uncommitted output token
  private contextText: string // dec(contextIds)
  private committed = 0 // output tokens whose text is final
  private committedText = ''
  private cached = 0 // positions the model's state holds (a Transformer's key/value cache)
  private readonly pieces: TokenTextDecoder | null
  private piecesText = '' // the output tokens' texts, joined

  /** `prompt`: a text, or token ids (a BOS is put in front when they do not start with one). */
  constructor(tokenizer: TextCodec, prompt: string | readonly number[], opts: GenerateOptions) {
    const { maxNewTokens, seed, stop = [], logprobs, maxSeqLen = null } = opts
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
      throw new LmpError(`max_new_tokens must be an integer >= 0, got ${maxNewTokens}`)
    }
    if (seed !== undefined && !Number.isSafeInteger(seed)) throw new LmpError(`seed must be an integer, got ${seed}`)
    if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s === '')) {
      throw new LmpError('stop must be a list of non-empty strings')
    }
    if (logprobs !== undefined && (!Number.isInteger(logprobs) || logprobs < 0)) {
      throw new LmpError(`logprobs must be an integer >= 0, got ${logprobs}`)
    }
    if (typeof prompt !== 'string' && !(Array.isArray(prompt) && prompt.every((id) => Number.isSafeInteger(id) && id >= 0))) {
      throw new LmpError('the prompt must be a string or a list of token ids')
    }
    this.sampling = checkSampling(opts)
    this.tokenizer = tokenizer
    this.specials = specialIdsOf(tokenizer)
    this.banned = neverGenerated(this.specials)
    this.maxNewTokens = maxNewTokens
    this.maxSeqLen = maxSeqLen
    this.stop = stop
    this.logprobs = logprobs
    this.seed = seed ?? randomSeed()
    this.rng = createRng(this.seed)

    this.promptIds = promptIds(tokenizer, prompt)
    if (this.promptIds.length === 0) throw new LmpError('the prompt encodes to no tokens')
    if (maxSeqLen !== null && this.promptIds.length > maxSeqLen) {
      throw new LmpError(`the prompt is ${this.promptIds.length} tokens but the model's context is ${maxSeqLen}`)
    }
    this.seen = new Set(this.promptIds)
    this.contextIds = this.promptIds.slice(-CONTEXT)
    this.contextText = tokenizer.dec(this.contextIds, { rmSpTks: true })
    this.pieces = tokenTextDecoder(tokenizer)
    this.promptTexts = this.pieces ? this.promptIds.map((id) => this.pieces!.push(id)) : null
    if (maxNewTokens === 0) this.finish('length')
  }

  /** The ids the next model call must be fed: the whole prompt first (prefill), then the last token. */
  get inputIds(): number[] {
    return this.nextCall().ids
  }

  /** The next model call must start from a fresh state (model.initState) rather than the carried one. */
  get freshState(): boolean {
    return this.nextCall().fresh
  }

  /**
   * What the next call feeds. A model with a context limit (the Transformer's positions) that is full
   * slides its window: the last half of the context is fed again from a fresh state, and generation goes
   * on (lmp re-encodes max_seq_len − 1 tokens for every token instead).
   */
  private nextCall(): { ids: number[]; fresh: boolean } {
    if (this.tokenIds.length === 0) return { ids: this.promptIds, fresh: true }
    if (this.maxSeqLen !== null && this.cached + 1 > this.maxSeqLen) {
      const keep = Math.max(1, Math.floor(this.maxSeqLen / 2))
      return { ids: [...this.promptIds, ...this.tokenIds].slice(-keep), fresh: true }
    }
    return { ids: [this.tokenIds[this.tokenIds.length - 1]], fresh: false }
  }

  /** Pick the next token from the logits of the last fed position, and say what text it adds. */
  accept(logitsRow: Float32Array): GenerationEvent {
    if (this.done) throw new Error('Generation.accept() called after the generation finished')
    const call = this.nextCall() // the call whose logits these are
    this.cached = call.fresh ? call.ids.length : this.cached + call.ids.length
    const tokenId = pickToken(logitsRow, this.sampling, this.seen, this.rng, this.banned)
    this.tokenIds.push(tokenId)
    this.seen.add(tokenId)
    const event: GenerationEvent = { tokenId, textDelta: '', done: false, token: '' }
    let finish: FinishReason | undefined = tokenId === this.specials.eos ? 'eos' : undefined
    if (!finish && this.tokenIds.length >= this.maxNewTokens) finish = 'length'
    // The last token's text includes the bytes still held (read as U+FFFD, as dec reads them).
    const token = this.pieces ? (finish ? this.pieces.peekLast(tokenId) : this.pieces.peek(tokenId)) : tokenizerText(this.tokenizer, tokenId)
    if (this.logprobs !== undefined) {
      const lse = logSumExp(logitsRow)
      event.logprob = logitsRow[tokenId] - lse
      if (this.logprobs > 0) {
        event.topLogprobs = topLogprobs(logitsRow, this.logprobs, lse)
        if (this.pieces) event.topLogprobsByText = topLogprobsObject(this.pieces, { tokenId, text: token, logprob: event.logprob }, event.topLogprobs)
      }
    }

    let decoded: string
    if (this.pieces) {
      this.piecesText += this.pieces.push(tokenId)
      decoded = this.piecesText
    } else {
      decoded = this.decodeOutput()
    }
    // While running, hold back the bytes of a character not yet complete (the decoder holds them, or a
    // bare codec shows them as U+FFFD): they are not text yet, and must not be taken for text that could
    // start a stop string.
    if (!this.pieces && !finish) decoded = decoded.replace(TRAILING_REPLACEMENTS, '')
    event.token = token
    let visible: string
    const stopAt = tokenId === this.specials.eos ? -1 : this.findStop(decoded)
    if (stopAt >= 0) {
      finish = 'stop'
      visible = decoded.slice(0, stopAt)
    } else {
      // At the end the held bytes are text after all (U+FFFD, as dec reads them).
      if (finish && this.pieces) decoded = this.piecesText += this.pieces.flush()
      // While running, hold back text that may be the start of a stop string.
      visible = finish ? decoded : decoded.slice(0, decoded.length - this.stopPrefixLength(decoded))
    }
    // Streamed text is never taken back. Normally `visible` extends it; only a Unicode normalization that
    // rewrites an already streamed character (a combining mark after it) breaks that, and then the
    // stream keeps what it sent and goes on from the same length.
    event.textDelta = visible.slice(this.text.length)
    this.text += event.textDelta
    if (finish) {
      this.finish(finish)
      event.done = true
      event.finishReason = finish
    }
    return event
  }

  private finish(reason: FinishReason): void {
    this.done = true
    this.finishReason = reason
  }

  /** The output as it reads after the prompt (specials removed). */
  private decodeOutput(): string {
    const pending = this.tokenIds.slice(this.committed)
    const tail = this.decodeAfterContext(pending)
    const text = this.committedText + tail
    // Commit the first BLOCK or so pending tokens, at a boundary where their text is final (not, say, in
    // the middle of a character that byte-level tokens spell in several pieces).
    for (let n = BLOCK; pending.length >= 2 * BLOCK && n < pending.length - 1; n++) {
      const block = pending.slice(0, n)
      const blockText = this.decodeAfterContext(block)
      if (!tail.startsWith(blockText)) continue
      this.committed += n
      this.committedText += blockText
      this.contextIds = [...this.contextIds, ...block].slice(-CONTEXT)
      this.contextText = this.tokenizer.dec(this.contextIds, { rmSpTks: true })
      break
    }
    return text
  }

  private decodeAfterContext(ids: number[]): string {
    const withContext = this.tokenizer.dec([...this.contextIds, ...ids], { rmSpTks: true })
    if (withContext.startsWith(this.contextText)) return withContext.slice(this.contextText.length)
    return this.tokenizer.dec(ids, { rmSpTks: true })
  }

  /** Where the earliest stop string starts in `text`, or -1. An occurrence that ended inside the text
   * already streamed would have been found earlier, so the search starts near its end. */
  private findStop(text: string): number {
    let first = -1
    for (const s of this.stop) {
      const at = text.indexOf(s, Math.max(0, this.text.length - s.length + 1))
      if (at >= 0 && (first < 0 || at < first)) first = at
    }
    return first
  }

  /** The length of the longest end of `text` that is a proper start of some stop string. */
  private stopPrefixLength(text: string): number {
    let longest = 0
    for (const s of this.stop) {
      for (let k = Math.min(s.length - 1, text.length); k > longest; k--) {
        if (text.endsWith(s.slice(0, k))) {
          longest = k
          break
        }
      }
    }
    return longest
  }
}

/**
 * What the first model call is fed for a prompt: enc(text) without its final EOS (lmp's gen), or the
 * given token ids, after a BOS when they do not start with one (the models learned every text after BOS).
 */
export function promptIds(tokenizer: TextCodec, prompt: string | readonly number[]): number[] {
  const { bos, eos } = specialIdsOf(tokenizer)
  if (typeof prompt !== 'string') return prompt[0] === bos ? prompt.slice() : [bos, ...prompt]
  const ids = tokenizer.enc(prompt)
  return ids.length > 1 && ids[ids.length - 1] === eos ? ids.slice(0, -1) : ids
}

/** A bare codec's text for one token (its dec, specials removed). */
function tokenizerText(tokenizer: TextCodec, id: number): string {
  return tokenizer.dec([id], { rmSpTks: true })
}

/** One sequence through the model: the prompt in one call (prefill), then one call per new token,
 * carrying the state. */
async function* drive(model: StepModel, gen: Generation): AsyncGenerator<GenerationEvent> {
  let state = model.initState(1)
  while (!gen.done) {
    const ids = gen.inputIds
    if (gen.freshState) state = model.initState(1)
    const out = await model.forward([ids], state)
    state = out.state
    const vocab = out.logits.length / ids.length
    yield gen.accept(out.logits.subarray((ids.length - 1) * vocab, ids.length * vocab))
  }
}

/** Stream the events of one generation (stop early by leaving the for-await loop). */
export async function* generate(
  model: StepModel,
  tokenizer: TextCodec,
  prompt: string | readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<GenerationEvent> {
  yield* drive(model, new Generation(tokenizer, prompt, { ...opts, maxSeqLen: model.manifest.maxSeqLen }))
}

export async function generateText(
  model: StepModel,
  tokenizer: TextCodec,
  prompt: string | readonly number[],
  opts: GenerateOptions,
): Promise<{ text: string; tokenIds: number[]; finishReason: FinishReason }> {
  const gen = new Generation(tokenizer, prompt, { ...opts, maxSeqLen: model.manifest.maxSeqLen })
  for await (const _event of drive(model, gen)) { /* run to the end */ }
  return { text: gen.text, tokenIds: gen.tokenIds.slice(), finishReason: gen.finishReason! }
}
