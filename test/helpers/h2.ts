// HTTP/2 mode for existing integration tables (issue 17.5): a test file that sets
// TOKENGATE_TEST_H2=1 before importing another one makes startGate serve TLS + HTTP/2 (a throwaway
// certificate) and `send` speak HTTP/2 to it, so the same cases run over both protocols unchanged.
import { connect, constants, type IncomingHttpHeaders } from 'node:http2'
import { type Issued, makePki, type Pki } from './certs.js'

let made: { pki: Pki; server: Issued } | undefined

/** The CA and server certificate of this process's HTTP/2 mode, or undefined when it is off. */
export function h2Mode(): { pki: Pki; server: Issued } | undefined {
  if (!process.env.TOKENGATE_TEST_H2) return undefined
  if (!made) {
    const pki = makePki()
    made = { pki, server: pki.issue('gate') }
    process.once('exit', () => pki.remove())
  }
  return made
}

/** One HTTP/2 request on its own session: path sent as given (:path), repeated headers kept. */
export function sendH2(
  base: URL,
  ca: Buffer,
  req: { method?: string; path: string; pairs: [string, string][]; body?: Buffer | string },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  const headers: Record<string, string | string[]> = {
    [constants.HTTP2_HEADER_METHOD]: req.method ?? 'GET',
    [constants.HTTP2_HEADER_PATH]: req.path,
  }
  for (const [k, v] of req.pairs) {
    const name = k.toLowerCase()
    if (name === 'host') continue // :authority names it
    const had = headers[name]
    headers[name] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v]
  }
  return new Promise((resolve, reject) => {
    const session = connect(base.origin, { ca })
    session.on('error', reject)
    // An empty body is no DATA frame at all, as browsers send a GET.
    const empty = req.body === undefined || req.body.length === 0
    const stream = session.request(headers, { endStream: empty })
    const chunks: Buffer[] = []
    let head: IncomingHttpHeaders = {}
    stream.on('response', (h) => {
      head = h
    })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('error', (err) => {
      session.destroy()
      reject(err)
    })
    stream.on('end', () => {
      session.close()
      const { ':status': status, ...rest } = head
      resolve({ status: Number(status), headers: rest as IncomingHttpHeaders, body: Buffer.concat(chunks) })
    })
    if (!empty) stream.end(req.body)
  })
}
