// The public listener: plain HTTP (node:http), HTTPS (node:https) or HTTPS with HTTP/2 and
// HTTP/1.1 on one port (node:http2, ALPN), all running the one pipeline on Node's compatible
// request/response objects. Timeouts that suit a proxy of multi-GB transfers, a graceful close
// (stop accepting, let in-flight requests finish; HTTP/2 sessions get a GOAWAY), and the
// certificate swap for rotation without a restart (new connections get the new certificate).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import type { Config } from '../config/schema.js'
import { listenOn } from './listen.js'

export interface ProxyServer {
  server: Server | Http2SecureServer
  listen(host: string, port: number): Promise<AddressInfo>
  /** Stop accepting; resolve when in-flight requests are done or `deadlineMs` passed. */
  close(deadlineMs: number): Promise<void>
  /**
   * TLS only: serve `cert`/`key` to new connections (open ones keep theirs). Throws, and keeps
   * the current certificate, when the pair is not valid PEM or does not match.
   */
  setCertificate(pems: { cert: Buffer; key: Buffer }): void
}

export type ListenTimeouts = Pick<
  Config['listen'],
  'headersTimeout' | 'requestTimeout' | 'idleTimeout' | 'keepAliveTimeout'
>

export interface ListenSecurity {
  tls?: { cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' | 'TLSv1.3' }
  http2?: boolean
  /** Strict-Transport-Security max-age, in milliseconds. */
  hsts?: number
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>

export function createProxyServer(
  handle: Handler,
  timeouts: ListenTimeouts,
  security: ListenSecurity = {},
): ProxyServer {
  const http1 = {
    // Slowloris: headers must arrive in time. requestTimeout defaults to 0 (off): Node's 300 s
    // would cut a multi-GB STOW upload on a slow link; idleTimeout catches a stalled one instead.
    headersTimeout: timeouts.headersTimeout,
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: timeouts.keepAliveTimeout,
    // Node checks header/request deadlines on this interval (30 s by default): keep it finer.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeouts.headersTimeout / 4))),
  }
  const tls = security.tls
  const context = tls ? { cert: tls.cert, key: tls.key, minVersion: tls.minVersion } : undefined
  let server: Server | Http2SecureServer
  if (context && security.http2) {
    const h2 = createSecureServer({ ...context, allowHTTP1: true })
    // The HTTP/1.1 fallback reads Node's http settings from the server object.
    Object.assign(h2, http1)
    server = h2
  } else if (context) server = createHttpsServer({ ...context, ...http1 })
  else server = createServer(http1)
  // A connection silent both ways for idleTimeout is destroyed (no listener: Node destroys it),
  // which aborts the upstream request of a stalled upload: the upstream never sees it as complete.
  // On HTTP/2 the same timer applies to the session.
  server.setTimeout(timeouts.idleTimeout)

  const hsts = security.hsts === undefined ? undefined : `max-age=${Math.floor(security.hsts / 1000)}`
  let closing = false
  // HTTP/1.1 sockets with a request in flight (the rest are idle and closed at once on stop).
  const busy = new Map<Socket, number>()
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (hsts) res.setHeader('strict-transport-security', hsts)
    if (req.httpVersionMajor === 1) {
      const socket = req.socket
      busy.set(socket, (busy.get(socket) ?? 0) + 1)
      res.once('close', () => {
        const left = (busy.get(socket) ?? 1) - 1
        if (left > 0) busy.set(socket, left)
        else busy.delete(socket)
      })
      // Draining: answer what arrived on an open connection, then close it.
      if (closing) res.shouldKeepAlive = false
    }
    void handle(req, res)
  }
  server.on('request', onRequest)
  // `Expect: 100-continue`: with a listener, Node no longer answers 100 at once; the pipeline
  // does, once the request is authorised (an unauthorised upload is refused before its body comes).
  server.on('checkContinue', onRequest)
  // A malformed request line or header never reaches the pipeline: answer 400 and close; headers
  // (or a whole request) that took too long: 408.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return void socket.destroy()
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  })
  // Every connection, to sweep idle ones on stop and cut the rest at the deadline.
  const sockets = new Set<Socket>()
  const sessions = new Set<Http2Session>()
  server.on(context ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  if (context) {
    // A failed handshake (a client that does not trust us, a port scan) is the client's problem.
    server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy())
  }
  server.on('session', (session: Http2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
    if (closing) session.close()
  })
  const closeIdle = () => {
    for (const socket of sockets) {
      const h2 = (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2'
      if (!h2 && !busy.has(socket)) socket.destroy()
    }
  }

  return {
    server,
    listen: (host, port) => listenOn(server as Server, host, port),
    close(deadlineMs) {
      closing = true
      return new Promise((resolve) => {
        // A keep-alive connection whose last response just ended is idle and would hold close()
        // until its keepAliveTimeout: sweep them as requests finish.
        const sweep = setInterval(closeIdle, 50)
        const done = () => {
          clearInterval(sweep)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          for (const session of sessions) session.destroy()
          for (const socket of sockets) socket.destroy()
          done()
        }, deadlineMs)
        server.close(() => done())
        // GOAWAY: a session's open streams finish, no new one starts.
        for (const session of sessions) session.close()
        closeIdle()
      })
    },
    setCertificate(pems) {
      if (!context) throw new Error('the listener does not serve TLS (listen.tls is not set)')
      const next: SecureContextOptions = { cert: pems.cert, key: pems.key, minVersion: context.minVersion }
      // Built first: a bad pair throws here and the running certificate stays.
      createSecureContext(next)
      ;(server as unknown as { setSecureContext(o: SecureContextOptions): void }).setSecureContext(next)
    },
  }
}
