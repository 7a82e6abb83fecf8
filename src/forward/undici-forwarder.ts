// Forward stage: the Forwarder (forwarder.ts) on undici's dispatcher API, which parses and pools
// with less work per request than node:http (bench/README.md). The client's body is handed to
// undici as a stream and the upstream's is written to the client chunk by chunk with backpressure
// both ways; only a small answer to rewrite (Content-Length ≤ WHOLE_BODY_MAX) is read whole first.
// Hop-by-hop headers are dropped both ways (upstream-headers.ts); a client that goes away aborts
// the upstream request; connect/headers timeouts and refused/reset connections become
// UpstreamTimeout / UpstreamUnavailable; an upstream that fails mid-body cuts the client's
// connection. An idempotent request without a body is retried once when a kept-alive socket turns
// out closed before any response byte (the upstream closed it while idle: Orthanc does after 1 s).
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough, type Writable } from 'node:stream'
import { Agent, type Dispatcher, Pool } from 'undici'
import type { UpstreamPatch } from '../rewrite/patch.js'
import {
  classify,
  type Forwarder,
  type ForwardOptions,
  type ForwardResult,
  STALE_SOCKET,
  type Truncation,
} from './forwarder.js'
import {
  type ResponseTransformFactory,
  type UpstreamHead,
  WHOLE_BODY_MAX,
  writeTransformed,
  writeWholeBody,
} from './response-transform.js'
import { tlsConnector } from './tls-connector.js'
import {
  clientResponseHeaders,
  requestHasBody,
  upstreamPath,
  upstreamRequestHeaders,
} from './upstream-headers.js'
import type { UpstreamTlsOptions } from './upstream-tls.js'

/**
 * Stop reusing a socket this long before the upstream's announced `Keep-Alive: timeout=` ends, so
 * a request never races the upstream's close (undici's default of 2 s would rule out reuse with
 * Orthanc's 1 s).
 */
const KEEP_ALIVE_MARGIN_MS = 500

/**
 * Bytes of the upstream's body that may wait in the client's socket buffer before the upstream is
 * paused: two of undici's 64 KiB reads. Pausing whenever a write returns false (at Node's 16 KiB)
 * paused and resumed the upstream after every chunk of a fast download (each resume also hands an
 * empty chunk), ~10–20% of the forwarder's CPU per GB (bench/README.md, large transfers).
 */
const WRITE_BUDGET = 128 * 1024

/**
 * highWaterMark of the upstream sockets (undici's default is 64 KiB). A request body is written
 * there in the client's 64 KiB reads: at 64 KiB each write returned false and undici paused and
 * resumed the client's body after every chunk of an upload (bench/README.md, large transfers).
 */
const UPSTREAM_SOCKET_HWM = 128 * 1024

/** One forwarded request: undici's handler, writing the upstream's answer to the client. */
class Exchange implements Dispatcher.DispatchHandler {
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

/**
 * The forwarder over one undici Agent. `tls`: per-origin TLS connect options (upstream-tls.ts);
 * an origin not in it verifies against the system's CAs. Every TLS connection is watched for a
 * refusal that would otherwise read as a reset (tls-connector.ts).
 */
export function createForwarder(
  opts: ForwardOptions,
  tls: ReadonlyMap<string, UpstreamTlsOptions> = new Map(),
): Forwarder {
  const newAgent = (tls: ReadonlyMap<string, UpstreamTlsOptions>) =>
    new Agent({
      // One pool per origin (undici's default), with that origin's TLS settings when it has some.
      factory: (origin, options) => {
        const url = new URL(String(origin))
        const o = options as Pool.Options
        if (url.protocol !== 'https:') return new Pool(origin, o)
        const own = tls.get(url.origin)
        return new Pool(origin, { ...o, connect: tlsConnector({ ...(o.connect as object), ...own }) })
      },
      connections: opts.maxSockets,
      pipelining: 1,
      keepAliveTimeout: opts.keepAliveTimeout,
      keepAliveMaxTimeout: opts.keepAliveTimeout,
      keepAliveTimeoutThreshold: KEEP_ALIVE_MARGIN_MS,
      headersTimeout: opts.headersTimeout,
      // An upstream body silent this long is cut (a client that stops reading for as long also
      // stops the upstream's body, and listen.idleTimeout cuts it anyway).
      bodyTimeout: opts.idleTimeout,
      // net.connect() takes highWaterMark (undici passes its own there); @types/node omits it.
      connect: {
        timeout: opts.connectTimeout,
        highWaterMark: UPSTREAM_SOCKET_HWM,
      } as Pool.Options['connect'],
    })
  let agent = newAgent(tls)
  /** Agents replaced by useUpstreamTls(), finishing their requests. */
  const retiring = new Set<Agent>()
  const dispatch = (exchange: Exchange) => {
    agent.dispatch(exchange.options, exchange)
  }

  return {
    get dispatcher() {
      return agent
    },
    useUpstreamTls(next) {
      const old = agent
      agent = newAgent(next)
      retiring.add(old)
      // Waits for the requests in flight on it, then closes its connections.
      void old.close().finally(() => retiring.delete(old))
    },
    forward(req, res, target, patch, transform, body) {
      return new Promise<ForwardResult>((resolve, reject) => {
        const withBody = requestHasBody(req)
        const method = req.method ?? 'GET'
        const options: Dispatcher.DispatchOptions = {
          origin: target.origin,
          path: upstreamPath(target, patch.path),
          method,
          headers: upstreamRequestHeaders(req, target, patch),
          body: withBody ? (body ?? req) : null,
          // Only a body-less GET/HEAD may be sent twice (stale-socket retry).
          idempotent: !withBody && (method === 'GET' || method === 'HEAD'),
        }
        let settled = false
        const exchange = new Exchange(
          req,
          res,
          patch,
          options,
          dispatch,
          (err) => {
            if (settled) return
            settled = true
            res.removeListener('close', onClose)
            exchange.controller?.abort(err)
            reject(err)
          },
          transform,
        )
        function onClose() {
          if (!res.writableFinished) {
            exchange.clientGone = true
            exchange.controller?.abort(new Error('client went away'))
          }
          if (settled) return
          settled = true
          resolve({
            status: res.statusCode,
            upstreamMs: exchange.headersAt ? exchange.headersAt - exchange.started : 0,
            truncated: exchange.cut,
          })
        }
        res.once('close', onClose)
        dispatch(exchange)
      })
    },
    socketCounts() {
      let connected = 0
      let free = 0
      // An Agent makes one Pool per origin, whose stats count sockets (a Client's would be a flag).
      for (const a of [agent, ...retiring])
        for (const stats of Object.values(a.stats)) {
          if (!('free' in stats)) continue
          connected += stats.connected
          free += stats.free
        }
      return { active: connected - free, idle: free }
    },
    async close() {
      await Promise.all([agent, ...retiring].map((a) => a.destroy()))
    },
  }
}
