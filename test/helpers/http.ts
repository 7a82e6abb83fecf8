// A raw HTTP client for tests: sends the path exactly as given (no URL normalising, unlike fetch),
// any headers (repeated ones too), and returns status, headers and the body.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { h2Mode, sendH2 } from './h2.js'

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
  json: () => unknown
}

export interface RawRequest {
  method?: string
  path: string
  /** Pairs, so a header can be sent twice. */
  headers?: [string, string][] | Record<string, string>
  body?: Buffer | string
}

export function send(baseUrl: string, req: RawRequest): Promise<RawResponse> {
  const base = new URL(baseUrl)
  const headers: string[] = []
  const pairs = Array.isArray(req.headers) ? req.headers : Object.entries(req.headers ?? {})
  // A gate in HTTP/2 mode (helpers/h2.ts): the same request over HTTP/2.
  const h2 = base.protocol === 'https:' ? h2Mode() : undefined
  if (h2)
    return sendH2(base, h2.pki.caPem, { ...req, pairs }).then((res) => {
      const text = res.body.toString('utf8')
      return { ...res, text, json: () => JSON.parse(text) }
    })
  for (const [k, v] of pairs) headers.push(k, v)
  // Node adds no Host when headers are given as a raw list, and HTTP/1.1 requires one.
  if (!pairs.some(([k]) => k.toLowerCase() === 'host')) headers.push('host', base.host)
  // A body is always framed (Node sends a GET body unframed, which the server reads as a new request).
  if (req.body !== undefined && !pairs.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k)))
    headers.push('content-length', String(Buffer.byteLength(req.body)))
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        method: req.method ?? 'GET',
        path: req.path,
        headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const body = Buffer.concat(chunks)
          const text = body.toString('utf8')
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            json: () => JSON.parse(text),
          })
        })
      },
    )
    r.on('error', reject)
    r.end(req.body)
  })
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

export function basic(token: string, user = 'token'): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}` }
}

export interface KeepAliveConnection {
  /** One request on the same TCP connection (Content-Length or chunked answers). */
  get(
    path: string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; headers: string; body: string }>
  /** Whether the server has closed the connection. */
  closed(): boolean
  close(): void
}

/** A single raw keep-alive TCP connection, to show a server did not drop it. */
export async function keepAliveConnection(baseUrl: string): Promise<KeepAliveConnection> {
  const { connect } = await import('node:net')
  const base = new URL(baseUrl)
  const socket = connect({ host: base.hostname, port: Number(base.port) })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  let closed = false
  socket.on('close', () => {
    closed = true
  })
  let buffer = Buffer.alloc(0)
  let waiter: (() => void) | undefined
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk])
    waiter?.()
  })
  socket.on('error', () => {})
  const more = () =>
    new Promise<void>((resolve, reject) => {
      if (closed) return reject(new Error('connection closed'))
      waiter = resolve
      socket.once('close', () => reject(new Error('connection closed')))
    })
  return {
    async get(path, headers = {}) {
      const lines = [`GET ${path} HTTP/1.1`, `Host: ${base.host}`, 'Connection: keep-alive']
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`)
      socket.write(`${lines.join('\r\n')}\r\n\r\n`)
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n')
        if (end !== -1) {
          const head = buffer.subarray(0, end).toString('latin1')
          const status = Number(head.split(' ')[1])
          if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
            // Chunked: take chunks until the zero-length one (no trailers here).
            let at = end + 4
            const parts: Buffer[] = []
            for (;;) {
              const line = buffer.indexOf('\r\n', at)
              if (line === -1) break
              const size = Number.parseInt(buffer.subarray(at, line).toString('latin1'), 16)
              if (buffer.length < line + 2 + size + 2) break
              if (size === 0) {
                buffer = buffer.subarray(line + 4)
                return { status, headers: head, body: Buffer.concat(parts).toString('utf8') }
              }
              parts.push(buffer.subarray(line + 2, line + 2 + size))
              at = line + 2 + size + 2
            }
          } else {
            const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? Number.NaN)
            if (Number.isNaN(length)) throw new Error(`no content-length nor chunked body in:\n${head}`)
            if (buffer.length >= end + 4 + length) {
              const body = buffer.subarray(end + 4, end + 4 + length).toString('utf8')
              buffer = buffer.subarray(end + 4 + length)
              return { status, headers: head, body }
            }
          }
        }
        await more()
      }
    },
    closed: () => closed,
    close: () => socket.destroy(),
  }
}
