// The public listener: a node:http server running the pipeline, with timeouts that suit a proxy
// of multi-GB transfers, and a graceful close (stop accepting, let in-flight requests finish).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { listenOn } from './listen.js'

export interface ProxyServer {
  server: Server
  listen(host: string, port: number): Promise<AddressInfo>
  /** Stop accepting; resolve when in-flight requests are done or `deadlineMs` passed. */
  close(deadlineMs: number): Promise<void>
}

export function createProxyServer(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): ProxyServer {
  const server = createServer({
    // Node's default requestTimeout (300 s) would cut a large STOW upload on a slow link.
    requestTimeout: 0,
    headersTimeout: 60_000,
    keepAliveTimeout: 5_000,
  })
  let closing = false
  server.on('request', (req, res) => {
    // Draining: answer what arrived on an open connection, then close it.
    if (closing) res.shouldKeepAlive = false
    void handle(req, res)
  })
  // A malformed request line or header never reaches the pipeline: answer 400 and close.
  server.on('clientError', (_err, socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    else socket.destroy()
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
