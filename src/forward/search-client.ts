// Forward stage: GET requests tokengate itself sends upstream (the searches of a split QIDO
// request, the instance search of STOW recording), on the forwarder's undici dispatcher: one HTTP
// client for everything upstream, so the same pool, the same connect / headers / idle-body timeouts
// (forward.*) and the same 502 / 504 mapping apply. The answer's body is returned unread: the
// caller streams it, and an answer not read yet holds the upstream back (TCP backpressure).
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { classify, STALE_SOCKET } from './forwarder.js'

/** An upstream answer: status, headers, and its body, not read yet. */
export interface SearchAnswer {
  statusCode: number
  headers: IncomingHttpHeaders
  /**
   * Read it (async iteration or pipeline()) or destroy it. It fails with undici's error when the
   * upstream resets or goes silent for forward.idleTimeout mid-body (classify() maps it).
   */
  body: Readable
}

export interface SearchClient {
  /**
   * GET `path` (relative to `target`'s path, with its query) with `headers`. Resolves with the
   * answer (body unread); rejects with UpstreamUnavailable / UpstreamTimeout. `signal` aborts the
   * request and its answer's body.
   */
  get(target: URL, path: string, headers: Record<string, string>, signal: AbortSignal): Promise<SearchAnswer>
}

/** Searches over the forwarder's dispatcher (Forwarder.dispatcher, the one in use at each request). */
export function createSearchClient(upstream: { readonly dispatcher: Dispatcher }): SearchClient {
  const once = (target: URL, path: string, headers: Record<string, string>, signal: AbortSignal) =>
    upstream.dispatcher.request({
      origin: target.origin,
      path: `${target.pathname.replace(/\/+$/, '')}${path}`,
      method: 'GET',
      headers: { ...headers, host: target.host },
      signal,
    })
  return {
    async get(target, path, headers, signal) {
      let answer: Dispatcher.ResponseData
      try {
        answer = await once(target, path, headers, signal).catch((err: NodeJS.ErrnoException) => {
          if (signal.aborted || !STALE_SOCKET.has(err.code ?? '')) throw err
          return once(target, path, headers, signal)
        })
      } catch (err) {
        throw classify(err as NodeJS.ErrnoException)
      }
      const body = answer.body as unknown as Readable
      return { statusCode: answer.statusCode, headers: answer.headers as IncomingHttpHeaders, body }
    },
  }
}
