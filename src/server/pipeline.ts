// The request pipeline (DESIGN §2): route match → credential → token lookup → decide → rewrite →
// forward. The only file that knows the order of the stages; it has the only catch, writes the
// only access-log line and records the only outcome metric per request.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { extractCredential } from '../credential/extract.js'
import { loggablePath, type SecretPolicy } from '../credential/secret.js'
import {
  AmbiguousCredential,
  BadRequest,
  InvalidToken,
  MalformedCredential,
  type Reason,
  RequestTimeout,
  RouteNotFound,
  TooManyFailures,
  toHttpError,
} from '../errors.js'
import { type ExecutorDeps, executePlan } from '../forward/execute.js'
import type { Forwarder } from '../forward/forwarder.js'
import type { Logger } from '../log.js'
import type { CacheResult, GateMetrics } from '../metrics/registry.js'
import { type Decision, decide } from '../policy/decide.js'
import { checkScopeIds } from '../policy/scope-ids.js'
import { scopeLabel } from '../rewrite/identity-headers.js'
import type { RewriteConfig } from '../rewrite/patch.js'
import { planRequest } from '../rewrite/plan.js'
import { readScopeRequest } from '../rewrite/query-scope.js'
import type { CompiledRoutes } from '../route/compile.js'
import { matchRoute, type RouteMatch } from '../route/match.js'
import type { CachedTokenStore } from '../token/cache.js'
import type { LastUsedRecorder } from '../token/last-used.js'
import type { AuthLimiter } from './auth-limiter.js'
import { resolveClient, type TrustedProxies } from './client-address.js'
import { applyCors, PREFLIGHT_ANSWERED } from './cors.js'
import type { LocalEndpoints } from './local-endpoints.js'
import { requestIdOf } from './request-id.js'
import { writeError as writeAnswer } from './respond.js'
import { hasBody, type UploadRate, watchUploadRate } from './upload-rate.js'

/** Everything a request needs; swapped as a whole on reload, so a request sees one config. */
export interface PipelineDeps {
  routes: CompiledRoutes
  store: CachedTokenStore
  forwarder: Forwarder
  /** Carries out plans: the forwarder, split searches, STOW recording. */
  executor: ExecutorDeps
  secrets: SecretPolicy
  rewrite: RewriteConfig
  log: Logger
  /** Where the one access-log line per request goes (`log.access`); null when off or below the level. */
  accessLog: Logger | null
  metrics: GateMetrics
  lastUsed: LastUsedRecorder
  now: () => number
  /** Endpoints tokengate answers itself, ahead of the stages (server/local-endpoints.ts). */
  local?: LocalEndpoints
  /** Whose X-Forwarded-* / Forwarded are believed (`trustedProxies`); null: nobody's. */
  trusted?: TrustedProxies
  /** The failed-auth limiter (`authLimiter`); absent: off. */
  limiter?: AuthLimiter
  /** `listen.minUploadRate`; absent: off. */
  uploadRate?: UploadRate
}

/** Methods whose requests carry no body (RFC 9110 §9.3): one with a body is refused. */
const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE'])

/** Refusals the failed-auth limiter counts: the credential itself was wrong. */
function isCredentialRefusal(err: unknown): boolean {
  return (
    err instanceof InvalidToken || err instanceof MalformedCredential || err instanceof AmbiguousCredential
  )
}

const LINK_ERROR_HEADERS = Object.freeze({
  'referrer-policy': 'no-referrer',
  'cache-control': 'private, no-store',
})
const NO_HEADERS = Object.freeze({})

const COUNTED = Symbol('tokengate.bytesCounted')
type CountedSocket = Socket & { [COUNTED]?: [number, number] }

/** A request handler over the current deps (read once per request). */
export function createPipeline(current: () => PipelineDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const deps = current()
    const started = performance.now()
    const socket = req.socket as CountedSocket
    deps.metrics.inflight++
    const rawUrl = req.url ?? '/'
    const requestId = requestIdOf(req, deps.secrets.prefix)
    res.setHeader('x-request-id', requestId)
    let route: RouteMatch | undefined
    let mountIndex = -1
    let decision: Decision | undefined
    let via: string | undefined
    let cache: CacheResult = 'none'
    let authMs = 0
    let upstreamMs = 0
    let upstreamStatus = 0
    let reason: Reason | 'ok' = 'ok'
    let uploadCut = false
    const client = resolveClient(socket.remoteAddress, req.headers, deps.trusted ?? null)
    try {
      // CORS (server/cors.ts): a preflight is answered here, credential-less and never forwarded.
      const cors = applyCors(deps.routes, req, res)
      if (cors === PREFLIGHT_ANSWERED) return
      const retryAfter = deps.limiter?.blockedFor(client.address, deps.now())
      if (retryAfter) throw new TooManyFailures('auth_failures', retryAfter)
      const method = req.method ?? 'GET'
      // A GET with `Content-Length: 1000000000` trickled a byte at a time once held an upstream
      // socket for ever; such a body has no meaning (RFC 9110 §9.3.1).
      if (NO_BODY_METHODS.has(method) && hasBody(req)) throw new BadRequest('body_not_allowed')
      const local = deps.local?.match(rawUrl)
      if (local) return await local(req, res)
      route = matchRoute(deps.routes, method, rawUrl, req.headers.accept)
      mountIndex = route.mount.index
      const credential = extractCredential(
        { headers: req.headers, rawHeaders: req.rawHeaders, rawUrl },
        route,
        deps.secrets,
      )
      via = credential.via
      const requested = readScopeRequest(route.params)
      checkScopeIds(requested)
      // A cache hit answers without a promise; only a miss waits for Redis.
      let record = deps.store.peek(credential.hash)
      cache = 'hit'
      if (record === undefined) {
        cache = 'miss'
        record = await deps.store.lookup(credential.hash)
      }
      const now = deps.now()
      // decide() and planRequest() answer without a promise unless they must read Redis.
      const decided = decide(record, route, requested, now, deps.store)
      decision = decided instanceof Promise ? await decided : decided
      deps.lastUsed.seen(credential.hash, now)
      const planned = planRequest(
        route,
        decision,
        {
          method: req.method ?? 'GET',
          rawUrl,
          // HTTP/2 names the host in :authority (a client may send no Host at all).
          host: req.headers.host ?? (req.headers[':authority'] as string | undefined),
          // From a trusted proxy only (server/client-address.ts): nobody else's are believed.
          forwardedHost: client.forwardedHost,
          forwardedProto: client.forwardedProto,
          forwardedFor: client.forwardedFor,
          remoteAddress: client.address,
          peerAddress: client.peer,
          localAddress: socket.localAddress,
          localPort: socket.localPort,
          encrypted: (socket as TLSSocket).encrypted === true,
          requestId,
          leakedHeaders: credential.leaks,
        },
        deps.rewrite,
        deps.store,
      )
      const plan = planned instanceof Promise ? await planned : planned
      // CORS headers over the upstream's own (errors get them from res, set by applyCors).
      if (cors) plan.patch.responseHeaders = { ...plan.patch.responseHeaders, ...cors }
      authMs = performance.now() - started
      // Authorised: now the client may send the body it announced (proxy-server's checkContinue).
      if (req.headers.expect !== undefined && /100-continue/i.test(req.headers.expect)) res.writeContinue()
      if (deps.uploadRate) watchUploadRate(req, res, deps.uploadRate, () => (uploadCut = true))
      const result = await executePlan(plan, req, res, route.target, deps.executor)
      upstreamMs = result.upstreamMs
      upstreamStatus = result.status
      if (result.truncated) reason = result.truncated
    } catch (err) {
      if (err instanceof RouteNotFound) mountIndex = err.mountIndex
      if (!authMs) authMs = performance.now() - started
      if (isCredentialRefusal(err)) deps.limiter?.refused(client.address, deps.now())
      const answer = toHttpError(uploadCut ? new RequestTimeout('upload_too_slow') : err)
      reason = answer.reason
      if (answer.reason === 'tls')
        deps.log.warn(
          { err: (err as Error).message, mount: route?.mount.prefix, requestId },
          'upstream TLS handshake failed',
        )
      if (answer.reason === 'bug')
        deps.log.error({ err, path: loggablePath(rawUrl), requestId }, 'unexpected error in pipeline')
      // A link path refused before its route was known (404, a malformed path) is still a link URL.
      const link = route ? route.linkSecretAt !== undefined : rawUrl.includes('/link/')
      if (!res.headersSent && !res.destroyed)
        writeAnswer(req, res, answer, link ? LINK_ERROR_HEADERS : NO_HEADERS)
      else res.destroy()
    } finally {
      if (uploadCut) reason = 'upload_too_slow'
      deps.metrics.inflight--
      const totalMs = performance.now() - started
      // Bytes are attributed per connection: whatever was read or written since the previous
      // request on it ended (a body may be read before the 'request' event fires).
      const counted = socket[COUNTED] ?? [0, 0]
      const bytesIn = socket.bytesRead - counted[0]
      const bytesOut = socket.bytesWritten - counted[1]
      socket[COUNTED] = [socket.bytesRead, socket.bytesWritten]
      deps.metrics.observe({
        mount: mountIndex,
        method: req.method,
        reason,
        cache,
        authSeconds: authMs / 1000,
        upstreamStatus,
        upstreamHeadersSeconds: upstreamMs / 1000,
        totalSeconds: totalMs / 1000,
        bytesIn,
        bytesOut,
      })
      if (deps.accessLog) {
        deps.accessLog.info(
          {
            requestId,
            method: req.method,
            path: loggablePath(rawUrl),
            status: res.statusCode,
            mount: route?.mount.prefix,
            via,
            tokenId: decision?.tokenId,
            user: decision?.user || undefined,
            scope: decision ? scopeLabel(decision.scope) : undefined,
            reason,
            cache,
            bytesIn,
            bytesOut,
            authMs: round(authMs),
            upstreamMs: round(upstreamMs),
            totalMs: round(totalMs),
            remote: client.address,
          },
          'request',
        )
      }
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
