// The HTTP server around the express app: how long a socket may sit still, how long a request may take to
// arrive, and a shutdown that answers every request it has accepted instead of resetting it.
//
// Memory a client can make the server hold is bounded by these timeouts: a client that stops reading makes
// its response wait for 'drain' (server/send.ts, the stream writer), and when nothing has moved on its socket
// for idleTimeoutMs the socket is destroyed, which cancels the work behind it.
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import net, { type Socket } from 'node:net'

export interface ConnectionLimits {
  /**
   * A socket on which nothing moves for this long is closed when it owes the server something (a request
   * body that stopped arriving) or the server waits on it (a response the client stopped reading), and
   * when it holds no request at all. A socket whose answer is still being computed is left alone.
   */
  idleTimeoutMs: number
  /** Headers and body must have arrived this long after the request began (else 408): trickled bodies. */
  requestTimeoutMs: number
  /** An idle keep-alive socket is closed after this long (sent to clients as Keep-Alive: timeout=). */
  keepAliveTimeoutMs: number
  /** On shutdown, connections still open after this long are closed whatever they are doing. */
  shutdownTimeoutMs: number
}

export const defaultConnectionLimits: ConnectionLimits = {
  idleTimeoutMs: 30_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  shutdownTimeoutMs: 30_000,
}

export interface HttpServer extends Server {
  /** Requests whose responses have not closed yet. */
  readonly inFlight: number
  /**
   * Graceful shutdown: stops listening at once (new connections are refused, never reset); every response
   * from now on carries `Connection: close`, so a client's keep-alive socket closes after the answer it is
   * waiting for; a request that arrives on a socket that was idle at the start is still answered; sockets
   * still idle once nothing is in flight are closed. Resolves when every connection is gone.
   */
  shutdown(): Promise<void>
  /** Whether shutdown() has begun. */
  readonly closing: boolean
}

/** An http.Server for `handler` with the limits above. */
export function createHttpServer(handler: http.RequestListener, limits: Partial<ConnectionLimits> = {}): HttpServer {
  const l = { ...defaultConnectionLimits, ...limits }
  const server = http.createServer({
    requestTimeout: l.requestTimeoutMs,
    headersTimeout: Math.min(60_000, l.requestTimeoutMs),
    // How often Node checks the two above (its default, 30 s, would let a trickled body live 60 s).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, l.requestTimeoutMs / 4)),
    keepAliveTimeout: l.keepAliveTimeoutMs,
  }) as HttpServer
  // The request on each socket (HTTP/1.1 answers one at a time per socket).
  const active = new Map<Socket, { req: IncomingMessage; res: ServerResponse }>()
  let closing = false
  let closed: Promise<void> | undefined

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket
    active.set(socket, { req, res })
    res.on('close', () => {
      if (active.get(socket)?.res === res) active.delete(socket)
      if (closing && active.size === 0) server.closeIdleConnections()
    })
    if (closing) res.setHeader('Connection', 'close')
    handler(req, res)
  })

  // Node's socket timeout: it fires after idleTimeoutMs without a byte read or written (and, between
  // requests, after keepAliveTimeout). With a listener here Node destroys nothing itself.
  server.timeout = l.idleTimeoutMs
  server.on('timeout', (socket: Socket) => {
    const a = active.get(socket)
    // Nothing asked of us: an idle keep-alive socket, or one that never sent a request.
    if (!a) return socket.destroy()
    // A body that stopped arriving, or an answer the client stopped reading (bytes wait for 'drain').
    if (!a.req.complete || socket.writableLength > 0 || a.res.writableNeedDrain) return socket.destroy()
    // Otherwise the answer is being computed: the client is owed nothing yet.
  })

  Object.defineProperties(server, {
    inFlight: { get: () => active.size },
    closing: { get: () => closing },
  })
  server.shutdown = () => {
    if (closed) return closed
    closing = true
    closed = new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), l.shutdownTimeoutMs)
      force.unref()
      // net.Server's close, not http.Server's: that one also destroys idle keep-alive sockets at once, and
      // a request a client sends on one at that moment is reset. Here they stay until nothing is in flight.
      net.Server.prototype.close.call(server, () => {
        clearTimeout(force)
        resolve()
      })
      if (active.size === 0) server.closeIdleConnections()
    })
    return closed
  }
  return server
}
