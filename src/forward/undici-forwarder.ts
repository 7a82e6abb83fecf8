// Forward stage: the Forwarder (forwarder.ts) on undici's dispatcher API, which parses and pools
// with less work per request than node:http (bench/README.md). One undici Agent (a pool per
// origin, with that origin's TLS settings; replaced whole by useUpstreamTls) dispatches each
// request's Exchange (exchange.ts), which streams the answer to the client. The client's body is
// handed to undici as a stream. Hop-by-hop headers are dropped both ways (upstream-headers.ts); a
// client that goes away aborts the upstream request; connect/headers timeouts and refused/reset
// connections become UpstreamTimeout / UpstreamUnavailable.
import { Agent, type Dispatcher, Pool } from 'undici'
import { Exchange } from './exchange.js'
import type { Forwarder, ForwardOptions, ForwardResult } from './forwarder.js'
import { tlsConnector } from './tls-connector.js'
import { requestHasBody, upstreamPath, upstreamRequestHeaders } from './upstream-headers.js'
import type { UpstreamTlsOptions } from './upstream-tls.js'

/**
 * Stop reusing a socket this long before the upstream's announced `Keep-Alive: timeout=` ends, so
 * a request never races the upstream's close (undici's default of 2 s would rule out reuse with
 * Orthanc's 1 s).
 */
const KEEP_ALIVE_MARGIN_MS = 500

/**
 * highWaterMark of the upstream sockets (undici's default is 64 KiB). A request body is written
 * there in the client's 64 KiB reads: at 64 KiB each write returned false and undici paused and
 * resumed the client's body after every chunk of an upload (bench/README.md, large transfers).
 */
const UPSTREAM_SOCKET_HWM = 128 * 1024

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
