// Forward stage, response bodies: how a forwarder sends an upstream answer through a rewrite (URL
// rewriting, STOW-RS recording) instead of passing it as it is. Forwarder-agnostic: the forwarder
// calls the factory with the upstream's head, then streams the body through writeTransformed or,
// for a small body of a rewrite that can work on a whole buffer, sends it with writeWholeBody.
//
// The status and headers are written when the transform emits its first byte (or ends), so a
// transform that holds the body back (STOW recording) can still fail the request with a proper
// error answer; once bytes have gone out, a failure can only cut the client's connection.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Readable, Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { GateError } from '../errors.js'
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
  // HTTP/2 has no reason phrase (RFC 9113 §8.3.2); Node warns when given one there.
  if (head.statusMessage && res.req.httpVersionMajor < 2)
    res.writeHead(head.status, head.statusMessage, list as string[])
  else res.writeHead(head.status, list as string[])
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
 * Write `chunk` and, when the client is slower than the upstream, wait for room. Rejects when the
 * client's connection closes first (it went away, or was cut), so a writer never waits forever.
 */
export function writeWithRoom(out: Writable, chunk: Buffer): Promise<void> | undefined {
  if (out.write(chunk)) return undefined
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      out.removeListener('close', onClose)
      resolve()
    }
    const onClose = () => {
      out.removeListener('drain', onDrain)
      reject(new Error('client went away'))
    }
    out.once('drain', onDrain)
    out.once('close', onClose)
  })
}

/**
 * Send the upstream's answer (`head`, and `upstream`: its body) to `res` through `body`, the
 * rewrite's Transform. The three are joined with pipeline(): an error on any of them (the upstream
 * reset or went silent, the rewrite failed, the client went away) destroys all of them. `fail` is
 * called (once) when that happens before anything was written, so the request still gets an
 * error answer; after that the client's connection is cut, never ended as if complete (and an
 * error that is not the upstream's, a bug, still fails the request so that it is logged).
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
  // The client went away: end the whole chain (the forwarder aborts the upstream request).
  const gone = new AbortController()
  const onClose = () => {
    if (!res.writableFinished) gone.abort()
  }
  res.once('close', onClose)
  pipeline(
    upstream,
    body,
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        start()
        await writeWithRoom(res, chunk)
      }
      start()
      res.end()
    },
    { signal: gone.signal },
  ).then(
    () => res.removeListener('close', onClose),
    (err: Error) => {
      res.removeListener('close', onClose)
      if (gone.signal.aborted) return
      // The upstream failed once the answer had started: cut (the forwarder recorded why).
      // Nothing sent yet, or a bug of the rewrite: the request fails (answered, or cut and logged).
      if (started && err instanceof GateError) res.destroy(err)
      else fail(err)
    },
  )
}
