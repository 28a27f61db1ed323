// JSON answers that respect back-pressure. A per-token perplexity answer with top_logprobs for a long text
// is megabytes; express's res.json serializes it into one string and hands it to the socket at once, so a
// client that never reads keeps all of it in the server's memory, and serializing it stalls the event loop
// (every decoding step) meanwhile. Here a large body is serialized piece by piece and written in chunks,
// each after the socket has drained the last ('drain'), yielding to the event loop between chunks.
import type { NextFunction, Request, Response } from 'express'

/** Bodies up to this size go out as before, in one write with a Content-Length. */
const CHUNK = 64 * 1024
/** Containers this deep or deeper are serialized whole (a per-token entry, a choice): a handful of pieces. */
const WHOLE_DEPTH = 2

/**
 * The text of JSON.stringify(value), in pieces: the top object's fields and the elements of its arrays are
 * serialized one at a time. Same output as JSON.stringify for JSON data (plain objects, arrays, strings,
 * finite numbers, booleans, null); values with toJSON are serialized whole.
 */
export function* jsonPieces(value: unknown, depth = 0): Generator<string> {
  if (depth >= WHOLE_DEPTH || value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    yield JSON.stringify(value) ?? 'null'
    return
  }
  const skipped = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol'
  if (Array.isArray(value)) {
    yield '['
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield ','
      yield* jsonPieces(skipped(value[i]) ? null : value[i], depth + 1)
    }
    yield ']'
    return
  }
  yield '{'
  let first = true
  for (const [k, v] of Object.entries(value)) {
    if (skipped(v)) continue
    yield `${first ? '' : ','}${JSON.stringify(k)}:`
    first = false
    yield* jsonPieces(v, depth + 1)
  }
  yield '}'
}

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
 * Sends `body` as JSON like express's res.json; a body larger than 64 KiB goes out in 64 KiB chunks
 * (chunked transfer encoding), each written only when the socket has taken the last. Stops quietly when
 * the client goes away.
 */
export async function sendJson(res: Response, body: unknown): Promise<void> {
  const pieces = jsonPieces(body)
  // Not for-of with break: that would close the generator.
  const next = () => {
    let chunk = ''
    for (let p = pieces.next(); !p.done; p = pieces.next()) {
      chunk += p.value
      if (chunk.length >= CHUNK) break
    }
    return chunk
  }
  let chunk = next()
  // What express's res.json does with its string (send adds the charset).
  if (!res.get('Content-Type')) res.set('Content-Type', 'application/json')
  if (chunk.length < CHUNK) {
    // Small: one write with a Content-Length, as always.
    res.send(chunk)
    return
  }
  const type = String(res.get('Content-Type'))
  if (!/charset=/i.test(type)) res.set('Content-Type', `${type}; charset=utf-8`)
  const gone = () => res.destroyed || res.writableEnded
  for (;;) {
    if (gone()) return
    if (!res.write(chunk)) await drained(res)
    // Let decoding steps and other requests run between chunks.
    else await new Promise((resolve) => setImmediate(resolve))
    chunk = next()
    if (chunk.length < CHUNK) break
  }
  if (!gone()) res.end(chunk)
}

/** Middleware: every route's res.json goes through sendJson. */
export function backPressuredJson() {
  return (_req: Request, res: Response, next: NextFunction) => {
    res.json = (body: unknown) => {
      sendJson(res, body).catch(() => res.destroy())
      return res
    }
    next()
  }
}
