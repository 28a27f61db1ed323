// HTTP errors in OpenAI's shape: { error: { message, type, param, code } }. Every error a client can
// cause becomes a 4xx with a one-line message; anything else is a 500 that never shows a stack trace.
import type { ErrorRequestHandler, Response } from 'express'
import { LmpError } from '../src/errors.ts'

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Seconds for a Retry-After header (429, 503). */
    readonly retryAfter?: number,
  ) {
    super(message)
  }
}

export function errorType(status: number): string {
  if (status === 401) return 'authentication_error'
  if (status === 404) return 'not_found_error'
  if (status === 429) return 'rate_limit_error'
  if (status >= 500) return 'server_error'
  return 'invalid_request_error'
}

export function sendError(res: Response, status: number, message: string, param: string | null = null, code: string | null = null) {
  res.status(status).json({ error: { message, type: errorType(status), param, code } })
}

/** The last middleware: maps body-parser, validation and LmpError failures onto JSON errors. */
export function errorHandler(log: { error(obj: unknown, msg?: string): void }): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (res.headersSent) {
      // A streaming response already started; the route reports its own errors in the stream.
      res.end()
      return
    }
    if (err instanceof HttpError) {
      if (err.retryAfter !== undefined) res.set('Retry-After', String(err.retryAfter))
      return sendError(res, err.status, err.message, err.param, err.code)
    }
    if (err instanceof LmpError) return sendError(res, err.status >= 400 && err.status < 600 ? err.status : 400, firstLine(err.message))
    // body-parser's errors carry `type` and `status`.
    const e = err as { type?: string; status?: number; message?: string; limit?: number }
    if (e?.type === 'entity.parse.failed') return sendError(res, 400, `invalid JSON body: ${firstLine(e.message ?? '')}`, null, 'invalid_json')
    if (e?.type === 'entity.too.large') return sendError(res, 413, `request body too large (limit ${e.limit} bytes)`, null, 'body_too_large')
    if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return sendError(res, 415, firstLine(e.message ?? 'unsupported encoding'))
    if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return sendError(res, e.status, firstLine(e.message ?? 'bad request'))
    log.error({ err }, 'unexpected error')
    sendError(res, 500, 'internal server error')
    void next
  }
}

export const firstLine = (s: string) => String(s).split('\n')[0].slice(0, 500)
