// What a request must look like before any route sees it: the bearer token (--api-key), the Host name on a
// loopback bind (DNS rebinding), and a JSON content type on POST (cross-site "simple" requests).
//
// With a key, only the page (its static files and onnxruntime-web's runtime under /ort/) and GET /health
// are public; /v1/*, /metrics and everything under /models/ (the exported graph, tokenizer, manifest, the
// training log and the model index) need `Authorization: Bearer KEY`. Without a key nothing is guarded,
// which is why `lmp serve` binds 127.0.0.1 by default and warns when told to bind anything else.
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { NextFunction, Request, Response } from 'express'
import { sendError } from './errors.ts'

/** The path prefixes a key guards (everything else the app serves is the page, /ort/ or /health). */
export const guardedPaths = ['/v1', '/metrics', '/models']

/** Whether `host` (an address or name to bind, or a Host header's name without its port) is loopback:
 * localhost and its subdomains (RFC 6761: they never leave the machine), 127.0.0.0/8, ::1. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1' || /^(0*:)*:?0*1$/.test(h) || /^::ffff:127\./.test(h)
  return false
}

/** The name in a Host header, without its port: 'a.b:80' → 'a.b', '[::1]:80' → '[::1]'. */
function hostName(header: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(:\d*)?$/.exec(header.trim())
  return m ? m[1] : header
}

/** `Authorization: Bearer KEY`, compared in constant time (sha256 of both sides: equal lengths). */
export function bearerCheck(apiKey: string) {
  if (!apiKey) throw new Error('bearerCheck needs a non-empty key')
  const expected = createHash('sha256').update(apiKey).digest()
  return (req: Request, res: Response, next: NextFunction) => {
    // A CORS preflight never carries credentials; what it asks about is checked when it comes.
    if (req.method === 'OPTIONS') return next()
    const header = req.get('authorization') ?? ''
    const m = /^Bearer\s+(.+)$/i.exec(header)
    const given = createHash('sha256').update(m ? m[1].trim() : '').digest()
    if (m && timingSafeEqual(given, expected)) return next()
    res.set('WWW-Authenticate', 'Bearer')
    sendError(res, 401, 'missing or invalid API key (send Authorization: Bearer KEY)', null, 'invalid_api_key')
  }
}

export interface CrossSiteOptions {
  /** Serve only loopback Host names (the server is bound to a loopback address). */
  loopbackOnly: boolean
}

/**
 * Refuses, before routing:
 * - on a loopback bind, a Host header that names anything but a loopback host (403): a page on
 *   evil.example whose name was re-pointed at 127.0.0.1 (DNS rebinding) would otherwise be same-origin
 *   with this server and read its answers;
 * - a POST whose Content-Type is not JSON (415): a foreign page can send text/plain or form bodies
 *   without a CORS preflight, but never application/json.
 */
export function crossSiteGuard(opts: CrossSiteOptions) {
  return (req: Request, res: Response, next: NextFunction) => {
    const host = req.headers.host
    // No Host header at all (HTTP/1.0 clients) cannot come from a browser.
    if (opts.loopbackOnly && host !== undefined && !isLoopback(hostName(host))) {
      return sendError(res, 403, `host '${host.slice(0, 100)}' is not served: this server answers only to localhost (bind another --host to serve other names)`, null, 'host_not_allowed')
    }
    if (req.method === 'POST' && !req.is(['application/json', '+json'])) {
      return sendError(res, 415, 'POST bodies must be JSON: send Content-Type: application/json', null, 'unsupported_media_type')
    }
    next()
  }
}
