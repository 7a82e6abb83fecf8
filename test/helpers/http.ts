// A raw HTTP client for tests: sends the path exactly as given (no URL normalising, unlike fetch),
// any headers (repeated ones too), and returns status, headers and the body.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'

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
