// POST /v1/chat/completions in OpenAI's request/response shape, plain and streaming (chat.completion.chunk
// events with `delta`s, ending with `data: [DONE]`). The messages become one prompt through a chat template:
// the model's own (`chat_template` in a Hugging Face tokenizer_config.json beside its manifest or in its
// experiment folder), rendered with @huggingface/jinja as transformers renders it, or DEFAULT_CHAT_TEMPLATE
// for base models. Generation stops where the template would start the user's next turn.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import type { Request, Response } from 'express'
import { Template } from '@huggingface/jinja'
import { QueueFullError, type TokenEvent } from './engine.ts'
import { HttpError } from './errors.ts'
import type { ServedModel } from './models.ts'
import {
  abortReasons, ChoiceRun, completionParams, findModel, logprobsOf, preparePrompt, sendStreamError, startEventStream,
  type CompletionRequest, type RouteContext,
} from './completions.ts'

/**
 * The template for models without their own: one line per message, `Role: content`, then `Assistant:` for
 * the reply. Plain text, so a base model trained on prose reads it as prose; the reply ends where the
 * model writes the next `User:` turn (or EOS).
 */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n{% endfor %}" +
  "{% if add_generation_prompt %}Assistant:{% endif %}"

export interface ChatMessage {
  role: string
  content: string | null | { type: string; text?: string }[]
  name?: string
}

export interface ChatRequest extends Omit<CompletionRequest, 'prompt' | 'logprobs' | 'echo'> {
  messages: ChatMessage[]
  max_completion_tokens?: number | null
  logprobs?: boolean | null
  top_logprobs?: number | null
}

/** Replies are cut at this many tokens unless max_tokens or max_completion_tokens says otherwise. */
export const DEFAULT_CHAT_MAX_TOKENS = 128

export interface ChatTemplate {
  /** The prompt for `messages`, with the assistant's turn opened. */
  render(messages: { role: string; content: string }[]): string
  /** Where a reply ends: the text that starts the next user turn (as the template writes it, and with its
   * whitespace runs as one space, the way the tokenizers read it). */
  turnStops: string[]
  /** 'model' (its tokenizer_config.json) or 'default'. */
  source: 'model' | 'default'
}

const specialText = (v: unknown): string => (typeof v === 'string' ? v : typeof (v as { content?: unknown })?.content === 'string' ? (v as { content: string }).content : '')

/**
 * Compiles a Jinja chat template as transformers renders it (variables messages, add_generation_prompt,
 * bos_token, eos_token) and works out where a reply ends. Throws the Jinja parser's error when the source
 * does not parse.
 */
export function chatTemplate(source: string, specials: { bos_token?: string; eos_token?: string } = {}, origin: 'model' | 'default' = 'model'): ChatTemplate {
  const template = new Template(source)
  const render = (messages: { role: string; content: string }[], addGenerationPrompt: boolean) =>
    template.render({ messages, add_generation_prompt: addGenerationPrompt, bos_token: specials.bos_token ?? '', eos_token: specials.eos_token ?? '' })
  // What the template writes between the end of an assistant message and the content of the next user
  // message: the end of one turn and the start of the next.
  const turnStops: string[] = []
  try {
    const text = render([{ role: 'user', content: '\u0002' }, { role: 'assistant', content: '\u0001' }, { role: 'user', content: '\u0003' }], false)
    const between = text.slice(text.indexOf('\u0001') + 1, text.indexOf('\u0003')).trimEnd()
    if (between.trim() !== '') {
      turnStops.push(between)
      const spaced = between.replace(/\s+/g, ' ')
      if (spaced !== between) turnStops.push(spaced)
    }
  } catch { /* a template that refuses this conversation: replies end at EOS and max_tokens only */ }
  // The model's end-of-text token, when it is text our tokenizers would write (ours are never in the text).
  const eos = specials.eos_token
  if (eos && !/^<(bos|eos|pad|unk)>$/.test(eos) && !turnStops.includes(eos)) turnStops.push(eos)
  return { render: (messages) => render(messages, true), turnStops, source: origin }
}

const defaultTemplate = chatTemplate(DEFAULT_CHAT_TEMPLATE, {}, 'default')
const templates = new WeakMap<ServedModel, ChatTemplate>()

/**
 * The model's chat template: `chat_template` of a tokenizer_config.json beside its manifest, else in its
 * experiment folder (read once), else the default. A malformed file or template fails the request with a
 * 500 that says which file, once per request (it is the server's model, not the client's input).
 */
export function modelChatTemplate(m: ServedModel): ChatTemplate {
  const known = templates.get(m)
  if (known) return known
  let found = defaultTemplate
  const onnxDir = m.files ? path.dirname(m.files.manifest) : undefined
  for (const dir of onnxDir ? [onnxDir, path.dirname(onnxDir)] : []) {
    const file = path.join(dir, 'tokenizer_config.json')
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    let config: Record<string, unknown>
    try {
      config = JSON.parse(text)
      let source = config.chat_template
      // Hugging Face also allows a list of named templates; 'default' is the one transformers uses.
      if (Array.isArray(source)) source = source.find((t: { name?: string }) => t?.name === 'default')?.template
      if (source === undefined) break
      if (typeof source !== 'string') throw new Error('chat_template must be a string')
      found = chatTemplate(source, { bos_token: specialText(config.bos_token), eos_token: specialText(config.eos_token) })
    } catch (err) {
      throw new HttpError(500, `the chat template in ${file} cannot be used: ${String((err as Error).message).split('\n')[0]}`, null, 'chat_template')
    }
    break
  }
  templates.set(m, found)
  return found
}

/** A message's text: a string, or the text parts of a content list. */
function messageText(msg: ChatMessage, i: number): string {
  if (msg.content === null || msg.content === undefined) return ''
  if (typeof msg.content === 'string') return msg.content
  return msg.content.map((part, j) => {
    if (part.type !== 'text' || typeof part.text !== 'string') {
      throw new HttpError(400, `messages[${i}].content[${j}]: only text parts are supported, got type '${String(part.type).slice(0, 40)}'`, 'messages', 'invalid_value')
    }
    return part.text
  }).join('')
}

interface ChatChoice {
  index: number
  message: { role: 'assistant'; content: string }
  logprobs: { content: ChatTokenLogprob[] } | null
  finish_reason: 'stop' | 'length'
}

interface ChatTokenLogprob {
  token: string
  logprob: number
  bytes: number[]
  top_logprobs: { token: string; logprob: number; bytes: number[] }[]
}

const utf8 = new TextEncoder()
/** A key's bytes: OpenAI's `bytes:\xNN` spelling read back, else the text's UTF-8. */
const bytesOf = (s: string) =>
  s.startsWith('bytes:\\x') ? s.slice(6).split('\\x').slice(1).map((h) => parseInt(h, 16)) : Array.from(utf8.encode(s))

/**
 * OpenAI's chat logprobs: one entry per token, with its text, its own bytes (a byte-level token's bytes
 * even when it holds only part of a character and its text is '': joined, the bytes are the reply's
 * UTF-8) and its alternatives.
 */
function chatLogprobs(m: ServedModel, tokens: TokenEvent[], cutAt: number): { content: ChatTokenLogprob[] } {
  const lp = logprobsOf(tokens, 0, cutAt)
  const own = (m.tokenizer as { tokenBytes?: (id: number) => Uint8Array | null }).tokenBytes
  return {
    content: lp.tokens.map((token, i) => ({
      token,
      logprob: lp.token_logprobs[i] ?? 0,
      // A token the stop string cut shows its part before the cut: its text's bytes then.
      bytes: own && token === tokens[i].token ? Array.from(own.call(m.tokenizer, tokens[i].tokenId) ?? []) : bytesOf(token),
      top_logprobs: Object.entries(lp.top_logprobs![i] ?? {})
        .sort((a, b) => b[1] - a[1])
        .map(([t, logprob]) => ({ token: t, logprob, bytes: bytesOf(t) })),
    })),
  }
}

/** The route: validates, renders the messages with the model's template, and answers as OpenAI does. */
export function chatCompletionsHandler(ctx: RouteContext) {
  return async (req: Request, res: Response) => {
    const started = performance.now()
    const body = ctx.validator.check<ChatRequest>('chat', req.body)
    const m = findModel(ctx.models, body.model)
    const template = modelChatTemplate(m)
    const messages = body.messages.map((msg, i) => ({ role: msg.role, content: messageText(msg, i) }))
    let promptText: string
    try {
      promptText = template.render(messages)
    } catch (err) {
      // A model's template may refuse a conversation (raise_exception: roles out of order, ...).
      throw new HttpError(400, `the model's chat template rejects these messages: ${String((err as Error).message).split('\n')[0]}`, 'messages', 'invalid_value')
    }
    const prompt = preparePrompt(m, promptText, 'the chat prompt', ctx.limits)
    const n = body.n ?? 1
    if (n > ctx.limits.maxChoices) throw new HttpError(400, `n must be <= ${ctx.limits.maxChoices}`, 'n', 'invalid_value')
    const userStops = body.stop == null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop]
    const wantLogprobs = body.logprobs === true
    const asCompletion: CompletionRequest = {
      ...body,
      prompt: promptText,
      max_tokens: body.max_completion_tokens ?? body.max_tokens ?? Math.min(DEFAULT_CHAT_MAX_TOKENS, ctx.limits.maxTokens),
      logprobs: wantLogprobs ? (body.top_logprobs ?? 0) : null,
      stop: [...userStops, ...template.turnStops],
    }
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`
    const created = Math.floor(Date.now() / 1000)
    res.locals.log = { model: m.name, choices: n, chat: template.source }

    if (ctx.engine.room(m) < n) throw new QueueFullError()
    const cancel = new AbortController()
    const timer = setTimeout(() => cancel.abort(abortReasons.timedOut), ctx.limits.requestTimeoutMs)
    let disconnected = false
    res.on('close', () => {
      if (res.writableFinished) return
      disconnected = true
      cancel.abort(abortReasons.disconnected)
    })
    const signal = cancel.signal
    let runs: ChoiceRun[]
    try {
      runs = Array.from({ length: n }, (_, j) => new ChoiceRun(ctx.engine, m, prompt.ids, completionParams(asCompletion, j), signal, () => !res.writableNeedDrain))
    } catch (err) {
      clearTimeout(timer)
      cancel.abort(abortReasons.finished)
      throw err
    }
    let first = true
    const onFirstToken = () => {
      if (!first) return
      first = false
      ctx.metrics.timeToFirstToken(m.name, (performance.now() - started) / 1000)
    }
    const promptTokens = prompt.ids.length
    const usage = (completion: number) => ({ prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion })
    try {
      if (!body.stream) {
        for (const r of runs) r.onToken = onFirstToken
        const finishes = await Promise.all(runs.map((r) => r.finish(signal)))
        const choices: ChatChoice[] = runs.map((r, i) => ({
          index: i,
          message: { role: 'assistant', content: r.text },
          logprobs: wantLogprobs ? chatLogprobs(m, r.tokens, r.reason === 'stop' ? r.text.length : Infinity) : null,
          finish_reason: finishes[i],
        }))
        const completion = runs.reduce((a, r) => a + r.tokens.length, 0)
        ctx.metrics.tokens(m.name, promptTokens, completion)
        Object.assign(res.locals.log, { prompt_tokens: promptTokens, completion_tokens: completion, finish: finishes })
        if (disconnected) return
        res.json({ id, object: 'chat.completion', created, model: m.name, choices, usage: usage(completion) })
        return
      }

      const out = startEventStream(res, ctx.limits.streamFlushMs)
      const send = (data: unknown) => out.write(`data: ${JSON.stringify(data)}\n\n`)
      const chunk = (choice: object) => ({ id, object: 'chat.completion.chunk', created, model: m.name, choices: [choice] })
      let completion = 0
      try {
        await Promise.all(runs.map(async (r, index) => {
          send(chunk({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }))
          r.onToken = (ev) => {
            if (ev.tokenId < 0) return
            onFirstToken()
            completion++
            const logprobs = wantLogprobs ? chatLogprobs(m, [ev], Infinity) : null
            if (ev.textDelta || logprobs) send(chunk({ index, delta: { content: ev.textDelta }, logprobs, finish_reason: null }))
          }
          send(chunk({ index, delta: {}, logprobs: null, finish_reason: await r.finish(signal) }))
        }))
        if (body.stream_options?.include_usage) {
          send({ id, object: 'chat.completion.chunk', created, model: m.name, choices: [], usage: usage(completion) })
        }
      } catch (err) {
        sendStreamError(ctx, send, err)
      } finally {
        ctx.metrics.tokens(m.name, promptTokens, completion)
        Object.assign(res.locals.log, { prompt_tokens: promptTokens, completion_tokens: completion, stream: true })
        out.end('data: [DONE]\n\n')
      }
    } finally {
      clearTimeout(timer)
      cancel.abort(abortReasons.finished)
    }
  }
}
