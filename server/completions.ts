// POST /v1/completions in OpenAI's request/response shape, plain and streaming (server-sent events
// of the same chunk shape, ending with `data: [DONE]`). Prompts are texts or token ids; `echo` with
// `logprobs` lists the prompt's tokens scored (lm-evaluation-harness's loglikelihood); logprobs tokens are
// each token's own text (src/tokenizer/pieces.ts), so they spell the returned text.
import { randomInt, randomUUID } from 'node:crypto'
import type { Request, Response } from 'express'
import { promptIds } from '../src/infer/generate.ts'
import { tokenTextDecoder, topLogprobsObject, type TokenTextDecoder } from '../src/tokenizer/pieces.ts'
import { QueueFullError, type Engine, type GenerationParams, type TokenEvent } from './engine.ts'
import { HttpError } from './errors.ts'
import type { Metrics } from './metrics.ts'
import type { ModelRegistry, ServedModel } from './models.ts'
import type { ServerLimits, Validator } from './validation.ts'

/** A prompt: a text, or token ids (lm-evaluation-harness sends ids by default). */
export type Prompt = string | number[]

export interface CompletionRequest {
  model?: string
  prompt: Prompt | Prompt[]
  max_tokens?: number | null
  temperature?: number | null
  top_p?: number | null
  top_k?: number | null
  repetition_penalty?: number | null
  n?: number | null
  stop?: string | string[] | null
  seed?: number | null
  logprobs?: number | null
  echo?: boolean | null
  stream?: boolean | null
  stream_options?: { include_usage?: boolean | null } | null
}

export interface Logprobs {
  tokens: string[]
  token_logprobs: (number | null)[]
  top_logprobs: Record<string, number>[] | null
  text_offset: number[]
}

interface Choice {
  text: string
  index: number
  logprobs: Logprobs | null
  finish_reason: 'stop' | 'length' | null
}

export interface RouteContext {
  models: ModelRegistry
  engine: Engine
  validator: Validator
  limits: ServerLimits
  metrics: Metrics
  log: { warn(obj: unknown, msg?: string): void }
}

export function findModel(models: ModelRegistry, name: string | undefined): ServedModel {
  if (!models.ready) throw new HttpError(503, 'models are still loading', null, 'loading')
  const m = models.get(name)
  if (!m) {
    const known = models.list().map((x) => x.name).join(', ')
    throw new HttpError(404, `model '${String(name).slice(0, 256)}' does not exist (served: ${known})`, 'model', 'model_not_found')
  }
  return m
}

/** The texts of the models' tokens (src/tokenizer/pieces.ts); every served tokenizer is one of the four kinds. */
export function textDecoder(m: ServedModel): TokenTextDecoder {
  const d = tokenTextDecoder(m.tokenizer)
  if (!d) throw new Error(`no token text decoder for the '${m.tokenizer.name}' tokenizer`)
  return d
}

/** A prompt as the model reads it: the ids fed (after BOS), from which index they are the prompt's own
 * (a text's BOS is not; ids the client sent are, a BOS among them too), and each id's text. */
export interface PreparedPrompt {
  prompt: Prompt
  ids: number[]
  listedFrom: number
  texts: string[]
}

/** Checks a prompt against the model and the limits (400s that name it) and prepares it. */
export function preparePrompt(m: ServedModel, prompt: Prompt, where: string, limits: ServerLimits): PreparedPrompt {
  if (typeof prompt !== 'string') {
    const bad = prompt.findIndex((id) => id >= m.manifest.vocabSize)
    if (bad >= 0) {
      throw new HttpError(400, `${where}[${bad}] is token id ${prompt[bad]}; the vocabulary has ${m.manifest.vocabSize} tokens`, 'prompt', 'invalid_value')
    }
  }
  const ids = promptIds(m.tokenizer, prompt)
  if (ids.length > limits.maxPromptTokens) {
    throw new HttpError(400, `${where} has ${ids.length} tokens; the limit is ${limits.maxPromptTokens}`, 'prompt', 'prompt_too_long')
  }
  const d = textDecoder(m)
  return { prompt, ids, listedFrom: typeof prompt === 'string' ? 1 : ids.length - prompt.length, texts: ids.map((id) => d.push(id)) }
}

/**
 * The prompt's own tokens in OpenAI's logprobs shape (echo): each token's log-probability given the tokens
 * before it, from BOS on, as /v1/perplexity reports it; null for a first token that nothing precedes (a
 * BOS the client sent). `top` alternatives per position (0: only the token itself).
 */
export async function promptLogprobs(engine: Engine, m: ServedModel, p: PreparedPrompt, top: number, signal: AbortSignal): Promise<Logprobs> {
  const out: Logprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] }
  const scored = p.ids.length > 1 ? await engine.score(m, p.ids, { perToken: true, alternatives: top > 0 ? top : undefined }, signal) : undefined
  const d = textDecoder(m)
  let offset = 0
  p.ids.forEach((id, j) => {
    if (j >= p.listedFrom) {
      const entry = j > 0 ? scored!.perToken![j - 1] : undefined
      out.tokens.push(p.texts[j])
      out.text_offset.push(offset)
      offset += codePoints(p.texts[j])
      out.token_logprobs.push(entry ? entry.logprob : null)
      out.top_logprobs!.push(entry ? topLogprobsObject(d, { tokenId: id, text: p.texts[j], logprob: entry.logprob }, entry.top ?? []) : null as never)
    }
    d.push(id)
  })
  return out
}

/** OpenAI's finish reasons: 'length' when max_tokens (or a cap) cut it, 'stop' for EOS or a stop string. */
export function finishReason(r: string | undefined): 'stop' | 'length' {
  return r === 'length' || r === 'timeout' ? 'length' : 'stop'
}

/**
 * Choice j's seed: seed + j, wrapping past Number.MAX_SAFE_INTEGER to 0, 1, ... so that every seed the
 * validator accepts (0..2^53-1) gives n distinct safe-integer seeds (seed + j itself would round).
 */
export function choiceSeed(seed: number, j: number): number {
  const room = Number.MAX_SAFE_INTEGER - seed
  return j <= room ? seed + j : j - room - 1
}

export function completionParams(body: CompletionRequest, choiceIndex: number): GenerationParams {
  const stop = body.stop == null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop]
  // A given seed makes each choice reproducible (choice j uses seed + j); otherwise a fresh random seed.
  const seed = body.seed != null ? choiceSeed(body.seed, choiceIndex) : randomInt(0, 2 ** 32 - 1)
  // OpenAI allows top_p 0: only the most likely token, i.e. top-k 1.
  const greedyByP = body.top_p === 0
  return {
    maxNewTokens: body.max_tokens ?? 16,
    temperature: body.temperature ?? 1,
    topK: greedyByP ? 1 : (body.top_k ?? 0),
    topP: greedyByP ? 1 : (body.top_p ?? 1),
    repetitionPenalty: body.repetition_penalty ?? 1,
    seed,
    stop,
    logprobs: body.logprobs ?? undefined,
  }
}

/**
 * Server-sent events, written as they come when the stream is slow and gathered when it is fast: the
 * first write goes out at once, and one that follows within `intervalMs` of the last waits for the rest of
 * that interval, together with anything else that arrives meanwhile. A socket write per token costs more
 * than a small model's decoding step, on both ends of the connection; a viewer does not see 10 ms.
 */
function coalescedWriter(res: Response, intervalMs: number) {
  let pending = ''
  let timer: NodeJS.Timeout | null = null
  let lastWrite = -Infinity
  let draining = false
  const open = () => !res.writableEnded && !res.destroyed
  const flush = () => {
    timer = null
    lastWrite = performance.now()
    if (!pending || !open()) return
    // Back-pressure: while the client is not reading, tokens gather here and 'drain' writes them.
    if (res.writableNeedDrain) {
      if (!draining) res.once('drain', flush)
      draining = true
      return
    }
    draining = false
    res.write(pending)
    pending = ''
  }
  return {
    write(text: string) {
      pending += text
      if (timer || draining) return
      const wait = lastWrite + intervalMs - performance.now()
      if (wait <= 0) flush()
      else timer = setTimeout(flush, wait)
    },
    end(text: string) {
      if (timer) clearTimeout(timer)
      if (open()) res.end(pending + text)
      pending = ''
    },
  }
}

/**
 * One choice's generation: queued at once (so a full queue or a bad prompt throws before the response
 * starts), its events gathered as they come and passed to `onToken`, which the streaming response sets.
 */
export class ChoiceRun {
  text = ''
  readonly tokens: TokenEvent[] = []
  onToken: (ev: TokenEvent) => void = () => {}
  /** The generation's own finish reason ('stop' is a stop string, 'eos' the model's end). */
  reason?: string
  private readonly ended: Promise<void>

  constructor(engine: Engine, m: ServedModel, prompt: Prompt, readonly params: GenerationParams, signal: AbortSignal, ready?: () => boolean) {
    this.ended = engine.generate(m, prompt, params, signal, (ev) => {
      if (ev.tokenId >= 0) {
        this.tokens.push(ev)
        this.text += ev.textDelta ?? ''
      }
      this.onToken(ev)
      if (ev.done) this.reason = ev.finishReason
    }, ready)
    // Awaited by finish(); until then a failure must not count as an unhandled rejection.
    this.ended.catch(() => {})
  }

  /** Waits for the end; OpenAI's finish reason. */
  async finish(signal: AbortSignal): Promise<'stop' | 'length'> {
    await this.ended
    let reason = this.reason
    if (reason === undefined && signal.aborted) reason = 'timeout'
    // A generation that ends without a done event stopped at max tokens (max_tokens 0).
    return reason === undefined ? (this.tokens.length >= this.params.maxNewTokens ? 'length' : 'stop') : finishReason(reason)
  }
}

/**
 * Generated tokens in OpenAI's logprobs shape, offsets from `startOffset`. Their texts joined are the
 * generated text; when a stop string cut it at `cutAt` characters, the tokens from the cut on are left
 * out and the one it cuts shows its part before the cut, so that the tokens still spell the text.
 */
export function logprobsOf(tokens: TokenEvent[], startOffset: number, cutAt = Infinity): Logprobs {
  const out: Logprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] }
  let at = 0 // in UTF-16 units, as cutAt
  let offset = startOffset
  for (const ev of tokens) {
    if (at >= cutAt) break
    const token = ev.token.slice(0, cutAt - at)
    out.tokens.push(token)
    out.token_logprobs.push(ev.logprob ?? null)
    out.top_logprobs!.push(ev.topLogprobsByText ?? (ev.logprob === undefined ? {} : { [ev.token]: ev.logprob }))
    out.text_offset.push(offset)
    at += token.length
    offset += codePoints(token)
  }
  return out
}

/**
 * The length of a text in Unicode code points: OpenAI's and vLLM's text_offset count characters so (they
 * are Python strings), where a JavaScript string's length counts UTF-16 units ('🎉' is 1, not 2).
 */
export function codePoints(text: string): number {
  let n = text.length
  for (let i = 0; i < text.length - 1; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) { n--; i++ }
    }
  }
  return n
}

/** Appends `b` to `a`, offsets and all. */
function joinLogprobs(a: Logprobs, b: Logprobs): Logprobs {
  return {
    tokens: [...a.tokens, ...b.tokens],
    token_logprobs: [...a.token_logprobs, ...b.token_logprobs],
    top_logprobs: [...a.top_logprobs!, ...b.top_logprobs!],
    text_offset: [...a.text_offset, ...b.text_offset],
  }
}

// Abort reasons made once: abort() without one builds a DOMException (and its stack) on every request.
const timedOut = new Error('request timed out')
const disconnectedReason = new Error('client disconnected')
const finished = new Error('request finished')

/** The route: one choice per prompt and n, queued at once; echo with logprobs scores each prompt once. */
export function completionsHandler(ctx: RouteContext) {
  return async (req: Request, res: Response) => {
    const started = performance.now()
    const body = ctx.validator.check<CompletionRequest>('completions', req.body)
    const m = findModel(ctx.models, body.model)
    // One prompt (a text or ids) or several (texts or id lists).
    const isList = Array.isArray(body.prompt) && body.prompt.length > 0 && typeof body.prompt[0] !== 'number'
    const prompts = (isList ? body.prompt : [body.prompt]) as Prompt[]
    const n = body.n ?? 1
    if (prompts.length * n > ctx.limits.maxChoices) {
      throw new HttpError(400, `n times the number of prompts must be <= ${ctx.limits.maxChoices}`, 'n', 'invalid_value')
    }
    const prepared = prompts.map((p, i) => preparePrompt(m, p, isList ? `prompt[${i}]` : 'prompt', ctx.limits))
    const echo = body.echo === true
    const wantLogprobs = body.logprobs != null

    const id = `cmpl-${randomUUID().replace(/-/g, '')}`
    const created = Math.floor(Date.now() / 1000)
    const jobs = prepared.flatMap((p, i) => Array.from({ length: n }, (_, j) => ({ prompt: p, index: i * n + j, params: completionParams(body, j) })))
    res.locals.log = { model: m.name, choices: jobs.length }

    // Every choice is queued now, before a byte of the response is written: a full queue is a 429 and a
    // prompt the model cannot take a 400, for streaming requests too.
    const scoring = echo && wantLogprobs ? prepared.length : 0
    if (ctx.engine.room(m) < jobs.length + scoring) throw new QueueFullError()
    // Cancel generation when the client goes away or the request runs too long.
    const cancel = new AbortController()
    const timer = setTimeout(() => cancel.abort(timedOut), ctx.limits.requestTimeoutMs)
    let disconnected = false
    res.on('close', () => {
      if (res.writableFinished) return
      disconnected = true
      cancel.abort(disconnectedReason)
    })
    const signal = cancel.signal
    let runs: ChoiceRun[]
    // Echo with logprobs scores each prompt once (its choices share it), beside the generations.
    let promptScores: Promise<Logprobs>[]
    try {
      // Back-pressure: a stream's generations pause while its client is not reading.
      runs = jobs.map((job) => new ChoiceRun(ctx.engine, m, job.prompt.ids, job.params, signal, () => !res.writableNeedDrain))
      promptScores = scoring ? prepared.map((p) => promptLogprobs(ctx.engine, m, p, body.logprobs ?? 0, signal)) : []
      for (const s of promptScores) s.catch(() => {}) // awaited below
    } catch (err) {
      clearTimeout(timer)
      cancel.abort(finished)
      throw err
    }
    try {
      await respond()
    } finally {
      clearTimeout(timer)
      // A choice that failed leaves its siblings nothing to run for.
      cancel.abort(finished)
    }

    async function respond() {
      let firstToken = true
      const onFirstToken = () => {
        if (firstToken) {
          firstToken = false
          ctx.metrics.timeToFirstToken(m.name, (performance.now() - started) / 1000)
        }
      }
      // Each prompt counts once, however many choices it has (as OpenAI and vLLM count it).
      const promptTokens = prepared.reduce((a, p) => a + p.ids.length, 0)
      const usage = (completion: number) => ({ prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion })
      // The echoed prompt is its tokens' texts (the prompt as the model read it), so offsets line up.
      const echoText = (i: number) => (echo ? jobs[i].prompt.texts.slice(jobs[i].prompt.listedFrom).join('') : '')
      const echoLogprobs = async (i: number): Promise<Logprobs> =>
        scoring ? promptScores[Math.floor(i / n)] : { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] }

      if (!body.stream) {
        for (const r of runs) r.onToken = onFirstToken
        const finishes = await Promise.all(runs.map((r) => r.finish(signal)))
        const choices: Choice[] = await Promise.all(runs.map(async (r, i) => {
          const prefix = echoText(i)
          const cut = r.reason === 'stop' ? r.text.length : Infinity
          return {
            text: prefix + r.text,
            index: jobs[i].index,
            logprobs: wantLogprobs ? joinLogprobs(await echoLogprobs(i), logprobsOf(r.tokens, codePoints(prefix), cut)) : null,
            finish_reason: finishes[i],
          }
        }))
        const completion = runs.reduce((a, r) => a + r.tokens.length, 0)
        ctx.metrics.tokens(m.name, promptTokens, completion)
        Object.assign(res.locals.log, { prompt_tokens: promptTokens, completion_tokens: completion, finish: choices.map((c) => c.finish_reason) })
        if (disconnected) return
        res.json({ id, object: 'text_completion', created, model: m.name, choices, usage: usage(completion) })
        return
      }

      const out = startEventStream(res, ctx.limits.streamFlushMs)
      const send = (data: unknown) => out.write(`data: ${JSON.stringify(data)}\n\n`)
      const chunk = (choice: Choice) => ({ id, object: 'text_completion', created, model: m.name, choices: [choice] })
      // The common chunk (a token's text, no logprobs) is written from a template: it is the hot path.
      const head = `data: ${JSON.stringify(chunk({ text: '', index: 0, logprobs: null, finish_reason: null })).split('"text":""')[0]}"text":`
      const tokenChunk = (text: string, index: number) => `${head}${JSON.stringify(text)},"index":${index},"logprobs":null,"finish_reason":null}]}\n\n`
      let completion = 0
      try {
        await Promise.all(jobs.map(async (job, i) => {
          let offset = 0
          if (echo) {
            const text = echoText(i)
            send(chunk({ text, index: job.index, logprobs: wantLogprobs ? await echoLogprobs(i) : null, finish_reason: null }))
            offset = codePoints(text)
          }
          // Tokens that came while the prompt was scored go out first, in order.
          const onToken = (ev: TokenEvent) => {
            if (ev.tokenId < 0) return
            onFirstToken()
            completion++
            const text = ev.textDelta ?? ''
            if (!wantLogprobs) {
              out.write(tokenChunk(text, job.index))
              return
            }
            send(chunk({ text, index: job.index, logprobs: logprobsOf([ev], offset), finish_reason: null }))
            offset += codePoints(ev.token)
          }
          runs[i].tokens.forEach(onToken)
          runs[i].onToken = onToken
          send(chunk({ text: '', index: job.index, logprobs: null, finish_reason: await runs[i].finish(signal) }))
        }))
        if (body.stream_options?.include_usage) {
          send({ id, object: 'text_completion', created, model: m.name, choices: [], usage: usage(completion) })
        }
      } catch (err) {
        sendStreamError(ctx, send, err)
      } finally {
        ctx.metrics.tokens(m.name, promptTokens, completion)
        Object.assign(res.locals.log, { prompt_tokens: promptTokens, completion_tokens: completion, stream: true })
        out.end('data: [DONE]\n\n')
      }
    }
  }
}

/** Starts a server-sent event stream on `res`. */
export function startEventStream(res: Response, flushMs: number) {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
  })
  res.flushHeaders()
  return coalescedWriter(res, flushMs)
}

/** Headers are sent: an error is reported inside the stream, in the same shape as a JSON error. */
export function sendStreamError(ctx: RouteContext, send: (data: unknown) => void, err: unknown): void {
  const status = err instanceof HttpError ? err.status : 500
  if (status >= 500) ctx.log.warn({ err }, 'generation failed mid-stream')
  const message = err instanceof HttpError ? err.message : 'generation failed'
  send({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } })
}

/** Abort reasons, for routes that share this module's cancellation. */
export const abortReasons = { timedOut, disconnected: disconnectedReason, finished }
