// Forward stage: GET requests tokengate itself sends upstream (the searches of a split QIDO
// request), over a keep-alive agent of their own, with the forwarder's connect and header
// timeouts and its error mapping (502 / 504). The response is returned unread: the caller streams
// it, and a response it has not read yet holds the upstream back (TCP backpressure).
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { ForwardOptions } from './forwarder.js'
import { classify, type Failure } from './forwarder.js'

export interface SearchClient {
  /**
   * GET `path` (relative to `target`'s path, with its query) with `headers`. Resolves with the
   * response head (body unread); rejects with UpstreamUnavailable / UpstreamTimeout. `signal`
   * aborts the request and its response.
   */
  get(
    target: URL,
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<IncomingMessage>
  close(): void
}

export function createSearchClient(opts: ForwardOptions): SearchClient {
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets, timeout: opts.keepAliveTimeout }
  const httpAgent = new HttpAgent(agentOptions)
  const httpsAgent = new HttpsAgent(agentOptions)
  return {
    get(target, path, headers, signal) {
      return new Promise<IncomingMessage>((resolve, reject) => {
        const https = target.protocol === 'https:'
        let timedOut: Failure = null
        const req = (https ? httpsRequest : httpRequest)({
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          method: 'GET',
          path: `${target.pathname.replace(/\/+$/, '')}${path}`,
          headers: { ...headers, host: target.host },
          agent: https ? httpsAgent : httpAgent,
          signal,
        })
        const fire = (which: Failure) => () => {
          timedOut = which
          req.destroy()
        }
        let timer = setTimeout(fire('connect'), opts.connectTimeout)
        req.once('socket', (socket) => {
          if (!socket.connecting) {
            clearTimeout(timer)
            timer = setTimeout(fire('headers'), opts.headersTimeout)
          } else {
            socket.once('connect', () => {
              clearTimeout(timer)
              timer = setTimeout(fire('headers'), opts.headersTimeout)
            })
          }
        })
        req.once('response', (res) => {
          clearTimeout(timer)
          resolve(res)
        })
        req.once('error', (err) => {
          clearTimeout(timer)
          reject(classify(err as NodeJS.ErrnoException, timedOut))
        })
        req.end()
      })
    },
    close() {
      httpAgent.destroy()
      httpsAgent.destroy()
    },
  }
}
