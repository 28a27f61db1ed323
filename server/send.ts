// JSON answers that respect back-pressure. A per-token perplexity answer with top_logprobs for a long text
// is megabytes; express's res.json hands all of it to the socket at once, so every client that never reads
// keeps a copy in the server's memory, without limit. Here a large answer is written a chunk at a time as
// the client reads, and the bytes held for such clients altogether are bounded (AnswerBudget).
import type { NextFunction, Request, Response } from 'express'

/** Bodies up to this size go out as before, in one write with a Content-Length; larger ones in chunks of it. */
const CHUNK = 64 * 1024

/** Resolves on 'drain', or when the response closes (then `res.destroyed` or `writableEnded` tells). */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

/**
 * How many bytes of large JSON answers the server holds at once for clients that have not read them yet
 * (default 64 MiB, `lmp serve --answer-buffer-mib`). An answer that does not fit is a 503 instead: memory
 * stays bounded by this, not by how many clients stop reading.
 */
export class AnswerBudget {
  used = 0
  constructor(readonly bytes = 64 * 1024 * 1024) {}

  /** Reserves `n` bytes; false when they do not fit (nothing is reserved then). */
  take(n: number): boolean {
    if (this.used + n > this.bytes) return false
    this.used += n
    return true
  }

  give(n: number): void {
    this.used -= n
  }
}

/**
 * Sends `body` as JSON like express's res.json. A body larger than 64 KiB becomes one buffer (its objects
 * are then free), reserved in `budget` until the response closes (a 503 when it does not fit), and is
 * written 64 KiB at a time, each chunk once the socket has taken the last ('drain'). Stops quietly when
 * the client goes away.
 */
export function sendJson(res: Response, body: unknown, budget: AnswerBudget): void {
  const text = JSON.stringify(body)
  // What express's res.json does with its string (send adds the charset).
  if (!res.get('Content-Type')) res.set('Content-Type', 'application/json')
  if (text === undefined || text.length < CHUNK) {
    // Small: one write with a Content-Length, as always.
    res.send(text)
    return
  }
  const bytes = Buffer.from(text)
  if (!budget.take(bytes.length)) {
    res.status(503).set('Retry-After', '1')
    res.send(JSON.stringify({ error: { message: 'the server is busy: too many large answers wait for their clients to read them; retry shortly', type: 'server_error', param: null, code: 'answer_buffer_full' } }))
    return
  }
  res.once('close', () => budget.give(bytes.length))
  res.set('Content-Length', String(bytes.length))
  // Not awaited here, and given only the bytes: a suspended async function keeps its arguments and locals
  // (the body's objects, its text: several times the bytes) alive for as long as the client does not read.
  writeChunks(res, bytes).catch(() => res.destroy())
}

async function writeChunks(res: Response, bytes: Buffer): Promise<void> {
  const gone = () => res.destroyed || res.writableEnded
  for (let at = 0; at < bytes.length; at += CHUNK) {
    if (gone()) return
    if (!res.write(bytes.subarray(at, at + CHUNK))) await drained(res)
  }
  if (!gone()) res.end()
}

/** Middleware: every route's res.json goes through sendJson, sharing one budget. */
export function backPressuredJson(budget = new AnswerBudget()) {
  return (_req: Request, res: Response, next: NextFunction) => {
    res.json = (body: unknown) => {
      sendJson(res, body, budget)
      return res
    }
    next()
  }
}
