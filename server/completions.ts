// POST /v1/completions in OpenAI's request/response shape, plain and streaming (server-sent events
// of the same chunk shape, ending with `data: [DONE]`).
import { randomInt, randomUUID } from 'node:crypto'
import type { Request, Response } from 'express'
import { EOS_ID, PAD_ID } from '../src/tokenizer/index.ts'
import { QueueFullError, type Engine, type GenerationParams, type TokenEvent } from './engine.ts'
import { HttpError } from './errors.ts'
import type { Metrics } from './metrics.ts'
import type { ModelRegistry, ServedModel } from './models.ts'
import type { ServerLimits, Validator } from './validation.ts'

export interface CompletionRequest {
  model?: string
  prompt: string | string[]
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

interface Logprobs {
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

/** The prompt's ids as generation consumes them: enc() without the trailing EOS (lmp's gen). */
export function promptTokenCount(m: ServedModel, prompt: string): number {
  const ids = m.tokenizer.enc(prompt)
  let n = ids.length
  while (n > 0 && (ids[n - 1] === EOS_ID || ids[n - 1] === PAD_ID)) n--
  return n
}

/** OpenAI's finish reasons: 'length' when max_tokens (or a cap) cut it, 'stop' for EOS or a stop string. */
export function finishReason(r: string | undefined): 'stop' | 'length' {
  return r === 'length' || r === 'timeout' ? 'length' : 'stop'
}

function tokenString(m: ServedModel, id: number): string {
  return m.tokenizer.dec([id])
}

export function completionParams(body: CompletionRequest, choiceIndex: number): GenerationParams {
  const stop = body.stop == null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop]
  // A given seed makes each choice reproducible (choice j uses seed + j); otherwise a fresh random seed.
  const seed = body.seed != null ? body.seed + choiceIndex : randomInt(0, 2 ** 32 - 1)
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
class ChoiceRun {
  text = ''
  readonly tokens: TokenEvent[] = []
  onToken: (ev: TokenEvent) => void = () => {}
  private reason?: string
  private readonly ended: Promise<void>

  constructor(engine: Engine, m: ServedModel, prompt: string, readonly params: GenerationParams, signal: AbortSignal, ready?: () => boolean) {
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

function logprobsOf(m: ServedModel, tokens: TokenEvent[], startOffset: number): Logprobs {
  const out: Logprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] }
  let offset = startOffset
  for (const ev of tokens) {
    const s = tokenString(m, ev.tokenId)
    out.tokens.push(s)
    out.token_logprobs.push(ev.logprob ?? null)
    const top: Record<string, number> = {}
    for (const alt of ev.topLogprobs ?? []) top[tokenString(m, alt.tokenId)] = alt.logprob
    out.top_logprobs!.push(top)
    out.text_offset.push(offset)
    offset += (ev.textDelta ?? '').length
  }
  return out
}

// Abort reasons made once: abort() without one builds a DOMException (and its stack) on every request.
const timedOut = new Error('request timed out')
const disconnectedReason = new Error('client disconnected')
const finished = new Error('request finished')

export function completionsHandler(ctx: RouteContext) {
  return async (req: Request, res: Response) => {
    const started = performance.now()
    const body = ctx.validator.check<CompletionRequest>('completions', req.body)
    const m = findModel(ctx.models, body.model)
    const prompts = Array.isArray(body.prompt) ? body.prompt : [body.prompt]
    const n = body.n ?? 1
    if (prompts.length * n > ctx.limits.maxChoices) {
      throw new HttpError(400, `n times the number of prompts must be <= ${ctx.limits.maxChoices}`, 'n', 'invalid_value')
    }
    const promptTokens = prompts.map((p) => promptTokenCount(m, p))
    promptTokens.forEach((count, i) => {
      if (count > ctx.limits.maxPromptTokens) {
        const where = prompts.length > 1 ? `prompt[${i}]` : 'prompt'
        throw new HttpError(400, `${where} has ${count} tokens; the limit is ${ctx.limits.maxPromptTokens}`, 'prompt', 'prompt_too_long')
      }
    })

    const id = `cmpl-${randomUUID().replace(/-/g, '')}`
    const created = Math.floor(Date.now() / 1000)
    const jobs = prompts.flatMap((prompt, p) => Array.from({ length: n }, (_, j) => ({ prompt, index: p * n + j, params: completionParams(body, j) })))
    res.locals.log = { model: m.name, choices: jobs.length }

    // Every choice is queued now, before a byte of the response is written: a full queue is a 429 and a
    // prompt the model cannot take a 400, for streaming requests too.
    if (ctx.engine.room(m) < jobs.length) throw new QueueFullError()
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
    try {
      // Back-pressure: a stream's generations pause while its client is not reading.
      runs = jobs.map((job) => new ChoiceRun(ctx.engine, m, job.prompt, job.params, signal, () => !res.writableNeedDrain))
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
      const echo = body.echo === true
      const wantLogprobs = body.logprobs != null
      let firstToken = true
      const onFirstToken = () => {
        if (firstToken) {
          firstToken = false
          ctx.metrics.timeToFirstToken(m.name, (performance.now() - started) / 1000)
        }
      }
      const usage = (completion: number) => {
        const prompt = promptTokens.reduce((a, b) => a + b, 0) * n
        return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
      }

      if (!body.stream) {
        for (const r of runs) r.onToken = onFirstToken
        const finishes = await Promise.all(runs.map((r) => r.finish(signal)))
        const choices: Choice[] = runs.map((r, i) => {
          const prefix = echo ? jobs[i].prompt : ''
          return {
            text: prefix + r.text,
            index: jobs[i].index,
            logprobs: wantLogprobs ? logprobsOf(m, r.tokens, prefix.length) : null,
            finish_reason: finishes[i],
          }
        })
        const completion = runs.reduce((a, r) => a + r.tokens.length, 0)
        ctx.metrics.tokens(m.name, usage(0).prompt_tokens, completion)
        Object.assign(res.locals.log, { prompt_tokens: usage(0).prompt_tokens, completion_tokens: completion, finish: choices.map((c) => c.finish_reason) })
        if (disconnected) return
        res.json({ id, object: 'text_completion', created, model: m.name, choices, usage: usage(completion) })
        return
      }

      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        'X-Accel-Buffering': 'no',
      })
      res.flushHeaders()
      const out = coalescedWriter(res, ctx.limits.streamFlushMs)
      const send = (data: unknown) => out.write(`data: ${JSON.stringify(data)}\n\n`)
      const chunk = (choice: Choice) => ({ id, object: 'text_completion', created, model: m.name, choices: [choice] })
      // The common chunk (a token's text, no logprobs) is written from a template: it is the hot path.
      const head = `data: ${JSON.stringify(chunk({ text: '', index: 0, logprobs: null, finish_reason: null })).split('"text":""')[0]}"text":`
      const tokenChunk = (text: string, index: number) => `${head}${JSON.stringify(text)},"index":${index},"logprobs":null,"finish_reason":null}]}\n\n`
      let completion = 0
      try {
        await Promise.all(jobs.map(async (job, i) => {
          const offset = { at: 0 }
          if (echo) {
            send(chunk({ text: job.prompt, index: job.index, logprobs: null, finish_reason: null }))
            offset.at = job.prompt.length
          }
          runs[i].onToken = (ev) => {
            if (ev.tokenId < 0) return
            onFirstToken()
            completion++
            const text = ev.textDelta ?? ''
            if (!wantLogprobs) {
              out.write(tokenChunk(text, job.index))
              return
            }
            const lp = logprobsOf(m, [ev], offset.at)
            offset.at += text.length
            send(chunk({ text, index: job.index, logprobs: lp, finish_reason: null }))
          }
          send(chunk({ text: '', index: job.index, logprobs: null, finish_reason: await runs[i].finish(signal) }))
        }))
        if (body.stream_options?.include_usage) {
          send({ id, object: 'text_completion', created, model: m.name, choices: [], usage: usage(completion) })
        }
      } catch (err) {
        // Headers are sent: report the error inside the stream, in the same shape as a JSON error.
        const status = err instanceof HttpError ? err.status : 500
        if (status >= 500) ctx.log.warn({ err }, 'generation failed mid-stream')
        const message = err instanceof HttpError ? err.message : 'generation failed'
        send({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } })
      } finally {
        ctx.metrics.tokens(m.name, usage(0).prompt_tokens, completion)
        Object.assign(res.locals.log, { prompt_tokens: usage(0).prompt_tokens, completion_tokens: completion, stream: true })
        out.end('data: [DONE]\n\n')
      }
    }
  }
}
