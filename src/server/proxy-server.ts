// The public listener: a node:http server running the pipeline, with timeouts that suit a proxy
// of multi-GB transfers, and a graceful close (stop accepting, let in-flight requests finish).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

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
  server.on('request', (req, res) => {
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
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.removeListener('error', reject)
          resolve(server.address() as AddressInfo)
        })
      })
    },
    close(deadlineMs) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections()
          resolve()
        }, deadlineMs)
        timer.unref()
        server.close(() => {
          clearTimeout(timer)
          resolve()
        })
        server.closeIdleConnections()
      })
    },
  }
}
