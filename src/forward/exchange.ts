// Forward stage, one request on undici's dispatcher API (undici-forwarder.ts makes the Agent and
// dispatches): the handler that writes the upstream's answer to the client chunk by chunk with
// backpressure, or reads a small answer whole for its rewrite (Content-Length ≤ WHOLE_BODY_MAX);
// holds the head until the first body byte so an upstream that fails before any is still answered
// 502 / 504; retries once, for an idempotent request without a body, a kept-alive socket that
// turns out closed before any response byte (the upstream closed it while idle: Orthanc does after
// 1 s); cuts the client's connection when the upstream fails mid-body.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, type Writable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { UpstreamPatch } from '../rewrite/patch.js'
import { classify, STALE_SOCKET, type Truncation } from './forwarder.js'
import {
  type ResponseTransformFactory,
  type UpstreamHead,
  WHOLE_BODY_MAX,
  writeTransformed,
  writeWholeBody,
} from './response-transform.js'
import { clientResponseHeaders } from './upstream-headers.js'

/**
 * Bytes of the upstream's body that may wait in the client's socket buffer before the upstream is
 * paused: two of undici's 64 KiB reads. Pausing whenever a write returns false (at Node's 16 KiB)
 * paused and resumed the upstream after every chunk of a fast download (each resume also hands an
 * empty chunk), ~10–20% of the forwarder's CPU per GB (bench/README.md, large transfers).
 */
const WRITE_BUDGET = 128 * 1024

/** One forwarded request: undici's handler, writing the upstream's answer to the client. */
export class Exchange implements Dispatcher.DispatchHandler {
  readonly started = performance.now()
  headersAt = 0
  cut: Truncation | null = null
  retried = false
  /** Where the upstream's body goes: the client's response, or the transform's input. */
  private sink: Writable
  /** A small body read whole for BodyRewrite.whole, instead of streamed through `sink`. */
  private whole: { head: UpstreamHead; rewrite: (body: Buffer) => Buffer | null; parts: Buffer[] } | null =
    null
  /**
   * The upstream's head as the client will get it, held until the first body byte: an upstream
   * that fails before sending any (closes right after its headers) is still answered 502 / 504.
   * Node would not have sent a written head before the first byte either.
   */
  private head: { status: number; message: string | undefined; headers: string[] } | null = null
  /** The client went away: abort the upstream request as soon as undici lets us. */
  clientGone = false
  controller: Dispatcher.DispatchController | null = null
  private waitingForDrain = false
  private readonly resumeOnDrain = () => {
    this.waitingForDrain = false
    this.controller?.resume()
  }

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly patch: UpstreamPatch,
    readonly options: Dispatcher.DispatchOptions,
    readonly dispatch: (exchange: Exchange) => void,
    readonly fail: (err: Error) => void,
    readonly transform: ResponseTransformFactory | undefined,
  ) {
    this.sink = res
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.clientGone) controller.abort(new Error('client went away'))
  }

  // undici calls the three below from its socket's parser: an exception thrown there (a bug of
  // ours, in a rewrite say) must fail this request (500 + a log line, or a cut once the answer has
  // started), never reach the socket or the process.
  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    try {
      this.start(controller, statusCode, headers, statusMessage)
    } catch (err) {
      this.bug(err)
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    try {
      this.data(controller, chunk)
    } catch (err) {
      this.bug(err)
    }
  }

  onResponseEnd(): void {
    try {
      this.end()
    } catch (err) {
      this.bug(err)
    }
  }

  /** Our own code threw: the request fails with that error (the pipeline logs it as a bug). */
  private bug(err: unknown): void {
    if (this.sink !== this.res) this.sink.destroy()
    this.fail(err instanceof Error ? err : new Error(String(err)))
  }

  private start(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    this.headersAt = performance.now()
    const res = this.res
    if (this.transform) {
      // The body goes through the rewrite (URL rewriting, STOW recording), which writes the head.
      for (const name in this.patch.responseHeaders) headers[name] = this.patch.responseHeaders[name]
      const head: UpstreamHead = { status: statusCode, statusMessage, headers }
      let rewrite: ReturnType<ResponseTransformFactory>
      try {
        rewrite = this.transform(head)
      } catch (err) {
        this.fail(err as Error)
        return
      }
      if (rewrite?.whole && Number(headers['content-length']) <= WHOLE_BODY_MAX) {
        this.whole = { head, rewrite: rewrite.whole, parts: [] }
        return
      }
      if (rewrite) {
        const body = new PassThrough()
        this.sink = body
        writeTransformed(head, body, res, rewrite.stream(), this.fail)
        return
      }
    }
    // Node takes a flat [name, value, …] list as well as an object (its types say only string[]).
    const outgoing = clientResponseHeaders(headers, this.patch.responseHeaders) as string[]
    this.head = { status: statusCode, message: statusMessage, headers: outgoing }
  }

  /** Write the client's head, once: with the first body byte, or at the end of an empty body. */
  private writeHead(): void {
    const head = this.head
    if (!head) return
    this.head = null
    if (head.message && this.req.httpVersionMajor === 1)
      this.res.writeHead(head.status, head.message, head.headers)
    else this.res.writeHead(head.status, head.headers)
  }

  private data(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.whole) {
      // Bounded by the Content-Length checked above (undici reads no more than it says).
      this.whole.parts.push(chunk)
      return
    }
    // undici hands an empty chunk after each resume (its parser re-enters the body): nothing to write.
    if (chunk.length === 0) return
    this.writeHead()
    const sink = this.sink
    // A write past the stream's highWaterMark returns false and 'drain' follows once the buffer is
    // empty; the upstream waits for it only once the buffer holds WRITE_BUDGET.
    if (!sink.write(chunk) && sink.writableLength >= WRITE_BUDGET && !this.waitingForDrain) {
      this.waitingForDrain = true
      controller.pause()
      sink.once('drain', this.resumeOnDrain)
    }
  }

  private end(): void {
    const whole = this.whole
    if (!whole) {
      this.writeHead()
      this.sink.end()
      return
    }
    const body = whole.parts.length === 1 ? (whole.parts[0] as Buffer) : Buffer.concat(whole.parts)
    writeWholeBody(this.res, whole.head, body, whole.rewrite(body))
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.clientGone) return
    const code = (err as NodeJS.ErrnoException).code
    if (!this.headersAt && !this.retried && this.options.idempotent && STALE_SOCKET.has(code ?? '')) {
      this.retried = true
      this.controller = null
      this.dispatch(this)
      return
    }
    const mapped = classify(err as NodeJS.ErrnoException)
    if (this.headersAt) {
      // Mid-body failure: the status is gone (or about to be); cutting the connection is the only
      // honest signal. An upstream silent for forward.idleTimeout is cut the same way.
      this.cut = code === 'UND_ERR_BODY_TIMEOUT' ? 'body' : 'econnreset'
      if (this.sink !== this.res) {
        // The rewrite's pipeline ends every stream of it, then answers (nothing sent yet) or cuts.
        this.sink.destroy(mapped)
        return
      }
      if (this.res.headersSent) {
        this.res.destroy(mapped)
        return
      }
      this.head = null // nothing went out: answered as a failure before the answer
    }
    this.fail(mapped)
  }
}
