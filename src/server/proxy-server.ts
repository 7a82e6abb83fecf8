// The public listener: a node:http server running the pipeline, with timeouts that suit a proxy
// of multi-GB transfers, and a graceful close (stop accepting, let in-flight requests finish).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Config } from '../config/schema.js'
import { listenOn } from './listen.js'

export interface ProxyServer {
  server: Server
  listen(host: string, port: number): Promise<AddressInfo>
  /** Stop accepting; resolve when in-flight requests are done or `deadlineMs` passed. */
  close(deadlineMs: number): Promise<void>
}

export type ListenTimeouts = Pick<
  Config['listen'],
  'headersTimeout' | 'requestTimeout' | 'idleTimeout' | 'keepAliveTimeout'
>

export function createProxyServer(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  timeouts: ListenTimeouts,
): ProxyServer {
  const server = createServer({
    // Slowloris: headers must arrive in time. requestTimeout defaults to 0 (off): Node's 300 s
    // would cut a multi-GB STOW upload on a slow link; idleTimeout catches a stalled one instead.
    headersTimeout: timeouts.headersTimeout,
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: timeouts.keepAliveTimeout,
    // Node checks header/request deadlines on this interval (30 s by default): keep it finer.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeouts.headersTimeout / 4))),
  })
  // A connection silent both ways for idleTimeout is destroyed (no listener: Node destroys it),
  // which aborts the upstream request of a stalled upload: the upstream never sees it as complete.
  server.timeout = timeouts.idleTimeout
  let closing = false
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // Draining: answer what arrived on an open connection, then close it.
    if (closing) res.shouldKeepAlive = false
    void handle(req, res)
  }
  server.on('request', onRequest)
  // `Expect: 100-continue`: with a listener, Node no longer answers 100 at once; the pipeline
  // does, once the request is authorised (an unauthorised upload is refused before its body comes).
  server.on('checkContinue', onRequest)
  // A malformed request line or header never reaches the pipeline: answer 400 and close; headers
  // (or a whole request) that took too long: 408.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return void socket.destroy()
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  })
  return {
    server,
    listen: (host, port) => listenOn(server, host, port),
    close(deadlineMs) {
      closing = true
      return new Promise((resolve) => {
        // A keep-alive connection whose last response just ended is idle and would hold close()
        // until its keepAliveTimeout: sweep them as requests finish.
        const sweep = setInterval(() => server.closeIdleConnections(), 50)
        const done = () => {
          clearInterval(sweep)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          server.closeAllConnections()
          done()
        }, deadlineMs)
        server.close(done)
        server.closeIdleConnections()
      })
    },
  }
}
