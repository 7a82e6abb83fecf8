// The request pipeline (DESIGN §2): route match → credential → token lookup → decide → rewrite →
// forward. The only file that knows the order of the stages; it has the only catch, writes the
// only access-log line per request, and is where the outcome of a request is decided.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { extractCredential } from '../credential/extract.js'
import { redactLink, type SecretPolicy } from '../credential/secret.js'
import { toHttpError } from '../errors.js'
import type { Forwarder } from '../forward/forwarder.js'
import type { Logger } from '../log.js'
import { type Decision, decide } from '../policy/decide.js'
import { scopeLabel } from '../rewrite/identity-headers.js'
import { planRewrite, type RewriteConfig } from '../rewrite/patch.js'
import { readScopeRequest } from '../rewrite/query-scope.js'
import type { CompiledRoutes } from '../route/compile.js'
import { matchRoute, type RouteMatch } from '../route/match.js'
import type { CachedTokenStore } from '../token/cache.js'
import { writeError as writeAnswer } from './respond.js'

/** Everything a request needs; swapped as a whole on reload, so a request sees one config. */
export interface PipelineDeps {
  routes: CompiledRoutes
  store: CachedTokenStore
  forwarder: Forwarder
  secrets: SecretPolicy
  rewrite: RewriteConfig
  log: Logger
  now: () => number
}

const LINK_ERROR_HEADERS = Object.freeze({
  'referrer-policy': 'no-referrer',
  'cache-control': 'private, no-store',
})
const NO_HEADERS = Object.freeze({})

/** A request handler over the current deps (read once per request). */
export function createPipeline(current: () => PipelineDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const deps = current()
    const started = performance.now()
    const rawUrl = req.url ?? '/'
    let route: RouteMatch | undefined
    let decision: Decision | undefined
    let via: string | undefined
    let authMs = 0
    let upstreamMs = 0
    let reason = 'ok'
    try {
      route = matchRoute(deps.routes, req.method ?? 'GET', rawUrl, req.headers.accept)
      const credential = extractCredential(
        { headers: req.headers, rawHeaders: req.rawHeaders, rawUrl },
        route,
        deps.secrets,
      )
      via = credential.via
      const requested = readScopeRequest(route.query)
      // A cache hit answers without a promise; only a miss waits for Redis.
      let record = deps.store.peek(credential.hash)
      if (record === undefined) record = await deps.store.lookup(credential.hash)
      decision = await decide(record, route, requested, deps.now(), deps.store)
      const patch = planRewrite(
        route,
        decision,
        {
          host: req.headers.host,
          remoteAddress: req.socket.remoteAddress,
          encrypted: (req.socket as TLSSocket).encrypted === true,
        },
        deps.rewrite,
      )
      authMs = performance.now() - started
      const result = await deps.forwarder.forward(req, res, route.target, patch)
      upstreamMs = result.upstreamMs
      if (result.truncated) reason = 'econnreset'
    } catch (err) {
      if (!authMs) authMs = performance.now() - started
      const answer = toHttpError(err)
      reason = answer.reason
      if (answer.reason === 'bug')
        deps.log.error({ err, path: redactLink(rawUrl) }, 'unexpected error in pipeline')
      if (!res.headersSent)
        writeAnswer(req, res, answer, route?.linkSecretAt ? LINK_ERROR_HEADERS : NO_HEADERS)
      else res.destroy()
    } finally {
      deps.log.info(
        {
          method: req.method,
          path: redactLink(rawUrl),
          status: res.statusCode,
          mount: route?.mount.prefix,
          via,
          tokenId: decision?.tokenId,
          user: decision?.user || undefined,
          scope: decision ? scopeLabel(decision.scope) : undefined,
          reason,
          authMs: round(authMs),
          upstreamMs: round(upstreamMs),
          totalMs: round(performance.now() - started),
          // The socket is gone (null) once a client that went away has been cleaned up.
          remote: req.socket?.remoteAddress,
        },
        'request',
      )
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
