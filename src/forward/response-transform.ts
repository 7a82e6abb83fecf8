// Forward stage, response bodies: how a forwarder sends an upstream answer through a Transform
// (URL rewriting, STOW-RS recording) instead of piping it as it is. Forwarder-agnostic: the
// http-proxy-3 forwarder calls writeTransformed from its `proxyRes` handler (selfHandleResponse);
// another forwarder calls it with its own upstream response stream.
//
// The status and headers are written when the transform emits its first byte (or ends), so a
// transform that holds the body back (STOW recording) can still fail the request with a proper
// error answer; once bytes have gone out, a failure can only cut the client's connection.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Readable, Transform } from 'node:stream'
import { connectionListed, HOP_BY_HOP } from './upstream-headers.js'

/** The upstream's status line and headers, as the factory sees them. */
export interface UpstreamHead {
  status: number
  /** The reason phrase to repeat (HTTP/1.1), if any. */
  statusMessage?: string | undefined
  headers: IncomingHttpHeaders
}

/** Decide from the upstream's head whether (and how) to transform its body; null passes it as it is. */
export type ResponseTransformFactory = (head: UpstreamHead) => Transform | null

// A transformed body has another length and other bytes than the upstream described.
const BODY_DESCRIBING = new Set(['content-length', 'content-md5', 'etag'])

function copyHeaders(res: ServerResponse, headers: IncomingHttpHeaders, transformed: boolean): void {
  // RFC 9110 §7.6.1: connection-specific fields (and those Connection names) are not forwarded.
  const listed = connectionListed(headers.connection)
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || listed?.has(name) || (transformed && BODY_DESCRIBING.has(name))) continue
    const value = headers[name]
    if (value !== undefined) res.setHeader(name, value)
  }
}

/**
 * Send the upstream's answer (`head`, and `upstream`: its body) to `res`, through the factory's
 * Transform if it returns one. `fail` is called (once) when the transform fails before anything
 * was written. An http.IncomingMessage is both: writeTransformed(msg, msg, …) with
 * `{ status: msg.statusCode, statusMessage, headers }`; an undici response gives its body.
 */
export function writeTransformed(
  head: UpstreamHead,
  upstream: Readable,
  res: ServerResponse,
  factory: ResponseTransformFactory,
  fail: (err: Error) => void,
): void {
  const { status, statusMessage, headers } = head
  let transform: Transform | null
  try {
    transform = factory(head)
  } catch (err) {
    upstream.destroy()
    fail(err as Error)
    return
  }
  if (!transform) {
    copyHeaders(res, headers, false)
    res.writeHead(status, statusMessage)
    upstream.pipe(res)
    return
  }
  const body = transform
  let started = false
  const start = () => {
    if (started) return
    started = true
    copyHeaders(res, headers, true)
    res.writeHead(status, statusMessage)
  }
  body.on('data', (chunk: Buffer) => {
    start()
    if (!res.write(chunk)) {
      body.pause()
      res.once('drain', () => body.resume())
    }
  })
  body.once('end', () => {
    start()
    res.end()
  })
  body.once('error', (err) => {
    upstream.destroy()
    if (started) res.destroy(err)
    else fail(err)
  })
  // The client went away: stop reading the upstream (its socket is then not reused).
  res.once('close', () => {
    if (!res.writableFinished) {
      upstream.destroy()
      body.destroy()
    }
  })
  upstream.pipe(body)
}
