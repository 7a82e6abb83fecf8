// Forward stage: stream the (rewritten) request to the upstream with http-proxy-3 and stream the
// answer back. Bodies are piped both ways and never buffered; a client that goes away aborts the
// upstream request; connection and header timeouts and upstream failures become UpstreamTimeout /
// UpstreamUnavailable for the pipeline to answer (502/504), unless the response already started,
// in which case the client's stream is cut (never a silently truncated success).
import { type ClientRequest, Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import type { Socket } from 'node:net'
import { createProxyServer } from 'http-proxy-3'
import type { Config } from '../config/schema.js'
import { UpstreamTimeout, UpstreamUnavailable } from '../errors.js'
import type { UpstreamPatch } from '../rewrite/patch.js'
import { type ResponseTransformFactory, writeTransformed } from './response-transform.js'

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
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    target: URL,
    patch: UpstreamPatch,
    transform?: ResponseTransformFactory,
  ): Promise<ForwardResult>
  /** Sockets the agents hold (open and idle), for leak checks and metrics. */
  socketCounts(): { active: number; idle: number }
  close(): Promise<void>
}

export type Failure = 'connect' | 'headers' | null

/** A response cut mid-body: the upstream reset it, or sent nothing for forward.idleTimeout. */
export type Truncation = 'econnreset' | 'body'

interface InFlight {
  patch: UpstreamPatch
  transform: ResponseTransformFactory | undefined
  /** Fail the request before the response started (the pipeline answers the error). */
  fail: (err: Error) => void
  timedOut: Failure
  started: number
  headersAt: number
  timer: NodeJS.Timeout | undefined
  /** The request to the upstream, once http-proxy-3 has made it. */
  proxyReq: ClientRequest | undefined
  /** Why the upstream's body ended early and the client's connection was cut. */
  cut: Truncation | null
}

const STATE = Symbol('tokengate.forward')
type TrackedRequest = IncomingMessage & { [STATE]?: InFlight }

function countSockets(pool: NodeJS.ReadOnlyDict<Socket[]>): number {
  let n = 0
  for (const key in pool) n += pool[key]?.length ?? 0
  return n
}

/** Map a socket or HTTP parser error to the GateError the pipeline answers (502 / 504). */
export function classify(err: NodeJS.ErrnoException, timedOut: Failure): Error {
  if (timedOut) return new UpstreamTimeout(timedOut)
  if (err.code === 'ETIMEDOUT') return new UpstreamTimeout('connect')
  if (err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EHOSTUNREACH') {
    return new UpstreamUnavailable('econnrefused', err.code)
  }
  if (err.code === 'HPE_INVALID_CONSTANT' || err.code?.startsWith('HPE_')) {
    return new UpstreamUnavailable('bad_response', err.code)
  }
  return new UpstreamUnavailable('econnreset', err.code)
}

export function createForwarder(opts: ForwardOptions): Forwarder {
  // Keep-alive pools; idle sockets close after keepAliveTimeout (Node also honours a shorter
  // `Keep-Alive: timeout=` hint from the upstream, as Orthanc sends), so a reused socket is
  // rarely one the upstream already closed.
  const agentOptions = {
    keepAlive: true,
    maxSockets: opts.maxSockets,
    timeout: opts.keepAliveTimeout,
    scheduling: 'lifo' as const,
  }
  const httpAgent = new HttpAgent(agentOptions)
  const httpsAgent = new HttpsAgent(agentOptions)

  const proxy = createProxyServer({
    xfwd: true,
    changeOrigin: true,
    // Forward req.url as given (already planned by rewrite/): no re-parsing, no normalising.
    toProxy: true,
    prependPath: true,
  })

  proxy.on('proxyRes', (proxyRes, req: TrackedRequest, res: ServerResponse) => {
    const state = req[STATE]
    if (!state) return
    state.headersAt = performance.now()
    clearTimeout(state.timer)
    // An upstream that dies mid-body: pipe() would leave the client waiting for bytes that never
    // come. Cut the client's connection so it sees a truncated body, never a clean end.
    // An upstream that stops sending mid-body (forward.idleTimeout) is cut the same way.
    const upstreamReq = state.proxyReq
    upstreamReq?.setTimeout(opts.idleTimeout, () => {
      state.cut = 'body'
      upstreamReq.destroy()
    })
    proxyRes.once('close', () => {
      if (!proxyRes.complete) {
        state.cut ??= 'econnreset'
        res.destroy()
      }
    })
    // Overwrite what the upstream said: a link response must not be cached or leak a Referer.
    for (const name in state.patch.responseHeaders) proxyRes.headers[name] = state.patch.responseHeaders[name]
    // selfHandleResponse was set for this request: the body goes through the transform.
    if (state.transform) {
      const head = {
        status: proxyRes.statusCode ?? 502,
        statusMessage: proxyRes.statusMessage,
        headers: proxyRes.headers,
      }
      writeTransformed(head, proxyRes, res, state.transform, state.fail)
    }
  })

  function armTimeouts(proxyReqSocket: Socket, state: InFlight, destroy: () => void): void {
    const fire = (which: Failure) => () => {
      state.timedOut = which
      destroy()
    }
    if (proxyReqSocket.connecting) {
      state.timer = setTimeout(fire('connect'), opts.connectTimeout)
      proxyReqSocket.once('connect', () => {
        clearTimeout(state.timer)
        state.timer = setTimeout(fire('headers'), opts.headersTimeout)
      })
    } else {
      state.timer = setTimeout(fire('headers'), opts.headersTimeout)
    }
  }

  proxy.on('proxyReq', (proxyReq, req: TrackedRequest, _res, _o, socket) => {
    const state = req[STATE]
    if (!state) return
    state.proxyReq = proxyReq
    armTimeouts(socket, state, () => proxyReq.destroy())
  })

  return {
    forward(req, res, target, patch, transform) {
      const state: InFlight = {
        patch,
        transform,
        fail: () => {},
        timedOut: null,
        started: performance.now(),
        headersAt: 0,
        timer: undefined,
        cut: null,
        proxyReq: undefined,
      }
      ;(req as TrackedRequest)[STATE] = state
      req.url = patch.path
      // Headers are planned on req itself: http-proxy-3 copies req.headers when it builds the
      // upstream request, before any body byte can be written.
      const headers = req.headers
      for (const name of patch.removeHeaders) delete headers[name]
      for (const name in patch.setHeaders) headers[name] = patch.setHeaders[name]
      return new Promise<ForwardResult>((resolve, reject) => {
        const done = () => {
          clearTimeout(state.timer)
          resolve({
            status: res.statusCode,
            upstreamMs: state.headersAt ? state.headersAt - state.started : 0,
            truncated: state.cut,
          })
        }
        res.once('close', done)
        state.fail = (err) => {
          clearTimeout(state.timer)
          res.removeListener('close', done)
          reject(err)
        }
        proxy.web(
          req,
          res,
          {
            target,
            agent: target.protocol === 'https:' ? httpsAgent : httpAgent,
            selfHandleResponse: transform !== undefined,
          },
          (err: Error) => {
            clearTimeout(state.timer)
            res.removeListener('close', done)
            const mapped = classify(err as NodeJS.ErrnoException, state.timedOut)
            if (res.headersSent) {
              // Mid-stream failure: the status is gone; cutting the connection is the only honest signal.
              state.cut ??= 'econnreset'
              res.destroy(mapped)
              done()
              return
            }
            reject(mapped)
          },
        )
      })
    },
    socketCounts() {
      return {
        active: countSockets(httpAgent.sockets) + countSockets(httpsAgent.sockets),
        idle: countSockets(httpAgent.freeSockets) + countSockets(httpsAgent.freeSockets),
      }
    },
    async close() {
      proxy.close()
      httpAgent.destroy()
      httpsAgent.destroy()
    },
  }
}
