// Forward stage, response bodies: how a forwarder sends an upstream answer through a rewrite (URL
// rewriting, STOW-RS recording) instead of passing it as it is. Forwarder-agnostic: the forwarder
// calls the factory with the upstream's head, then streams the body through writeTransformed or,
// for a small body of a rewrite that can work on a whole buffer, sends it with writeWholeBody.
//
// The status and headers are written when the transform emits its first byte (or ends), so a
// transform that holds the body back (STOW recording) can still fail the request with a proper
// error answer; once bytes have gone out, a failure can only cut the client's connection.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Readable, Transform } from 'node:stream'
import { clientResponseHeaders } from './upstream-headers.js'

/** The upstream's status line and headers, as the factory sees them. */
export interface UpstreamHead {
  status: number
  /** The reason phrase to repeat (HTTP/1.1), if any. */
  statusMessage?: string | undefined
  headers: IncomingHttpHeaders
}

/** A body rewrite, as a stream and, when it has one, as a function over a whole body. */
export interface BodyRewrite {
  stream(): Transform
  /**
   * The rewritten body, or null when it is unchanged (the upstream's bytes and headers are then
   * sent as they are). Offered for answers of at most WHOLE_BODY_MAX bytes, whose Content-Length
   * is known: a QIDO-RS page or a metadata answer, read whole with no stream machinery.
   */
  whole?(body: Buffer): Buffer | null
}

/** Decide from the upstream's head whether (and how) to rewrite its body; null passes it as it is. */
export type ResponseTransformFactory = (head: UpstreamHead) => BodyRewrite | null

/**
 * Bodies up to this size (by Content-Length) go through BodyRewrite.whole when it exists: a QIDO
 * page of ~60 studies or a series' metadata. Small enough that 1,000 such answers in flight hold
 * at most 64 MB; larger ones stream.
 */
export const WHOLE_BODY_MAX = 64 * 1024

// A transformed body has another length and other bytes than the upstream described.
const BODY_DESCRIBING: ReadonlySet<string> = new Set(['content-length', 'content-md5', 'etag'])
const NO_EXTRA: Readonly<Record<string, string>> = Object.freeze({})

/** The client's head: the upstream's headers (link response headers already merged in by the forwarder). */
function writeHeadFrom(res: ServerResponse, head: UpstreamHead, transformed: boolean, length?: number): void {
  const list = clientResponseHeaders(head.headers, NO_EXTRA, transformed ? BODY_DESCRIBING : undefined)
  if (length !== undefined) list.push('content-length', String(length))
  // Node takes a flat [name, value, …] list as well as an object (its types say only string[]).
  res.writeHead(head.status, head.statusMessage, list as string[])
}

/**
 * Send a whole upstream body: as it came (`rewritten` null: same bytes, same headers) or
 * rewritten, with its own Content-Length. One write: head and body leave in one packet.
 */
export function writeWholeBody(
  res: ServerResponse,
  head: UpstreamHead,
  body: Buffer,
  rewritten: Buffer | null,
): void {
  writeHeadFrom(res, head, rewritten !== null, rewritten?.length)
  res.end(rewritten ?? body)
}

/**
 * Send the upstream's answer (`head`, and `upstream`: its body) to `res` through `body`, the
 * rewrite's Transform. `fail` is called (once) when the transform fails before anything was
 * written; after that a failure cuts the client's connection.
 */
export function writeTransformed(
  head: UpstreamHead,
  upstream: Readable,
  res: ServerResponse,
  body: Transform,
  fail: (err: Error) => void,
): void {
  let started = false
  const start = () => {
    if (started) return
    started = true
    writeHeadFrom(res, head, true)
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
