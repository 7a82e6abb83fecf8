// A small recording upstream for what Orthanc cannot show: exactly what arrived (method, raw path
// and query, headers, body size and sha256) and whether the request was aborted, plus routes that
// misbehave on purpose. Usage: const upstream = await startRecordingUpstream(); t.teardown(upstream.stop)
//
//   /stream/<bytes>        a deterministic body of that many bytes, generated as it is sent
//   /slow-stream/<bytes>/<ms>  that many bytes spread evenly over <ms> (a long download)
//   /hang                  headers never come (until the client goes away)
//   /slow-headers/<ms>     headers after <ms>
//   /abort-mid             headers and part of the body, then the socket is destroyed
//   /stall-body            headers and part of the body, then nothing (until the client goes away)
//   anything else          200 JSON: what arrived ({ method, url, bodyBytes, bodySha256 })
import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface LoopbackServer {
  url: string
  port: number
  /** `127.0.0.1:<port>`, as a client's Host header names it. */
  host: string
  /** Destroys open connections (kept-alive ones too) and closes the server. */
  stop: () => Promise<void>
}

/** Listen on a free loopback port; stop() does not wait for idle keep-alive connections. */
export async function listenLoopback(server: Server): Promise<LoopbackServer> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    host: `127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

export interface RecordedRequest {
  method: string
  /** Raw request target as received (path and query, byte for byte). */
  url: string
  headers: IncomingHttpHeaders
  bodyBytes: number
  bodySha256: string
  /** The client (tokengate) went away before the response was finished. */
  aborted: boolean
  /** The request body arrived whole (its end was seen); false when the upload was cut. */
  bodyComplete: boolean
}

export interface RecordingUpstream {
  url: string
  port: number
  requests: RecordedRequest[]
  stop: () => Promise<void>
}

/** Deterministic bytes (the same for every request of one size), written with backpressure. */
function streamBody(res: ServerResponse, size: number): void {
  let left = size
  let seed = 11
  const chunkSize = 256 * 1024
  const template = Buffer.allocUnsafe(chunkSize)
  for (let i = 0; i < chunkSize; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    template[i] = seed & 0xff
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
  const write = () => {
    while (left > 0) {
      const n = Math.min(left, chunkSize)
      left -= n
      if (!res.write(n === chunkSize ? template : template.subarray(0, n))) {
        res.once('drain', write)
        return
      }
    }
    res.end()
  }
  write()
}

export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = []
  const timers = new Set<NodeJS.Timeout>()
  const server = createServer((req, res) => {
    const seen: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      bodyBytes: 0,
      bodySha256: '',
      aborted: false,
      bodyComplete: false,
    }
    requests.push(seen)
    res.on('close', () => {
      if (!res.writableFinished) seen.aborted = true
    })
    const hash = createHash('sha256')
    req.on('data', (chunk: Buffer) => {
      seen.bodyBytes += chunk.length
      hash.update(chunk)
    })
    req.on('error', () => {})
    req.on('end', () => {
      seen.bodyComplete = true
      seen.bodySha256 = hash.digest('hex')
      const path = seen.url.split('?')[0] ?? ''
      const parts = path.split('/').filter(Boolean)
      const stream = parts.indexOf('stream')
      if (stream !== -1) return streamBody(res, Number(parts[stream + 1] ?? 0))
      const slowStream = parts.indexOf('slow-stream')
      if (slowStream !== -1) {
        const total = Number(parts[slowStream + 1] ?? 0)
        const steps = 20
        let sent = 0
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
        const timer = setInterval(
          () => {
            const n = sent + Math.ceil(total / steps) > total ? total - sent : Math.ceil(total / steps)
            sent += n
            res.write(Buffer.alloc(n, 7))
            if (sent >= total) {
              clearInterval(timer)
              timers.delete(timer)
              res.end()
            }
          },
          Number(parts[slowStream + 2] ?? 1000) / steps,
        )
        timers.add(timer)
        res.on('close', () => clearInterval(timer))
        return
      }
      if (parts.includes('hang')) return
      const slow = parts.indexOf('slow-headers')
      if (slow !== -1) {
        const timer = setTimeout(
          () => {
            timers.delete(timer)
            if (!res.destroyed) res.end(JSON.stringify({ late: true }))
          },
          Number(parts[slow + 1] ?? 1000),
        )
        timers.add(timer)
        return
      }
      if (parts.includes('stall-body')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1_000_000 })
        res.write(Buffer.alloc(64 * 1024, 2))
        return
      }
      if (parts.includes('abort-mid')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1_000_000 })
        res.write(Buffer.alloc(64 * 1024, 1), () => setTimeout(() => res.socket?.destroy(), 20))
        return
      }
      const body = JSON.stringify({
        method: seen.method,
        url: seen.url,
        bodyBytes: seen.bodyBytes,
        bodySha256: seen.bodySha256,
      })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  })
  const listening = await listenLoopback(server)
  return {
    url: listening.url,
    port: listening.port,
    requests,
    stop: () => {
      for (const timer of timers) clearTimeout(timer)
      return listening.stop()
    },
  }
}
