// Forward stage, the contract (shared/ARCHITECTURE.md `Forwarder`): stream the (rewritten) request
// to the upstream and its answer back. The implementation is undici-forwarder.ts; the http-proxy-3
// one was removed after the benchmark (bench/README.md "Why one forwarder"). Also here: the one
// mapping of socket and parser errors to the 502 / 504 answers, shared with search-client.ts.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { type Dispatcher, errors } from 'undici'
import type { Config } from '../config/schema.js'
import { UpstreamTimeout, UpstreamUnavailable } from '../errors.js'
import type { UpstreamPatch } from '../rewrite/patch.js'
import type { ResponseTransformFactory } from './response-transform.js'
import type { UpstreamTlsOptions } from './upstream-tls.js'

export type ForwardOptions = Config['forward']

export interface ForwardResult {
  status: number
  /** Milliseconds from sending to the upstream's response headers. */
  upstreamMs: number
  /** Why the client's connection was cut after the response started (the upstream failed or went silent); null when it ended cleanly. */
  truncated: Truncation | null
}

export interface Forwarder {
  /**
   * Resolves when the response to the client is finished (or the client went away). With
   * `transform`, the upstream's body goes through the Transform it returns (see
   * response-transform.ts); an error from it before the first byte rejects, after it cuts.
   * `body` replaces `req` as the request body sent upstream (the STOW-RS part guard).
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    target: URL,
    patch: UpstreamPatch,
    transform?: ResponseTransformFactory,
    body?: Readable,
  ): Promise<ForwardResult>
  /**
   * The one upstream HTTP client (pool, timeouts): tokengate's own requests upstream use it too
   * (search-client.ts). Read it per request: useUpstreamTls() replaces it.
   */
  readonly dispatcher: Dispatcher
  /**
   * New TLS settings per upstream origin (a reload): new requests go over new connections made
   * with them; the old connections finish their requests and close.
   */
  useUpstreamTls(tls: ReadonlyMap<string, UpstreamTlsOptions>): void
  /** Sockets held to upstreams (open and idle), for leak checks and metrics. */
  socketCounts(): { active: number; idle: number }
  close(): Promise<void>
}

/** Which of tokengate's own timers fired, if one did. */
export type Failure = 'connect' | 'headers' | null

/** A response cut mid-body: the upstream reset it, or sent nothing for forward.idleTimeout. */
export type Truncation = 'econnreset' | 'body'

/**
 * Errors that mean "the kept-alive connection was closed under us" (the upstream closed it while
 * idle): the only ones worth sending a body-less GET/HEAD once more.
 */
export const STALE_SOCKET: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])

/** Map a socket, parser or undici error to the GateError the pipeline answers (502 / 504). */
export function classify(err: NodeJS.ErrnoException, timedOut: Failure = null): Error {
  if (timedOut) return new UpstreamTimeout(timedOut)
  switch (err.code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new UpstreamTimeout('connect')
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamTimeout('headers')
    case 'UND_ERR_BODY_TIMEOUT':
      return new UpstreamTimeout('body')
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
      return new UpstreamUnavailable('econnrefused', err.code)
  }
  // The TLS handshake failed: the upstream's certificate did not verify (CA, name, dates) or it
  // refused ours (under TLS 1.3, an alert or a close right after it: tls-connector.ts). Never
  // retried without verification.
  if (isTlsFailure(err.code)) return new UpstreamUnavailable('tls', `${err.code}: ${err.message}`)
  // undici's parser errors do not always carry their HPE_ code (an invalid status line has none).
  if (err.code?.startsWith('HPE_') || err.code === 'UND_ERR_INFO' || err instanceof errors.HTTPParserError)
    return new UpstreamUnavailable('bad_response', err.code)
  return new UpstreamUnavailable('econnreset', err.code)
}

/**
 * The code of an upstream that closed a new TLS connection without answering the request sent on
 * it (tls-connector.ts): under TLS 1.3, a refused client certificate when the upstream sends no alert.
 */
export const TLS_CLOSED_UNANSWERED = 'TG_TLS_CLOSED_UNANSWERED'

/** node:tls / OpenSSL codes of a failed handshake, a certificate check or a TLS alert. */
export function isTlsFailure(code: string | undefined): boolean {
  return (
    code !== undefined &&
    (code === TLS_CLOSED_UNANSWERED ||
      code.startsWith('ERR_SSL_') ||
      code.startsWith('ERR_TLS_') ||
      /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY|DECRYPT|DECODE)|ERR_OSSL/.test(code))
  )
}
