// The request pipeline (DESIGN §2): route match → credential → token lookup → decide → rewrite →
// forward. decideRequest() (server/decide-request.ts) runs the stages up to the plan, shared with
// the decision endpoint; this handler executes the plan, has the only catch, writes the only
// access-log line and records the only outcome metric per request.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
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
import type { AccessLog, Logger } from '../log.js'
import type { GateMetrics } from '../metrics/registry.js'
import { scopeLabel } from '../rewrite/identity-headers.js'
import { LINK_RESPONSE_HEADERS, NO_RESPONSE_HEADERS, type RewriteConfig } from '../rewrite/patch.js'
import type { CompiledRoutes } from '../route/compile.js'
import type { RouteMatch } from '../route/match.js'
import type { CachedTokenStore } from '../token/cache.js'
import type { LastUsedRecorder } from '../token/last-used.js'
import type { AuthLimiter } from './auth-limiter.js'
import { resolveClient, type TrustedProxies } from './client-address.js'
import { applyCors, PREFLIGHT_ANSWERED } from './cors.js'
import { type DecisionTrace, decideRequest } from './decide-request.js'
import { answerDecision, decisionTarget, originalRequest } from './decision-endpoint.js'
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
  accessLog: AccessLog | null
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
  /** `decisionEndpoint.path` when enabled (server/decision-endpoint.ts); absent: off. */
  decidePath?: string
}

/** Methods whose requests carry no body (RFC 9110 §9.3): one with a body is refused. */
const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE'])

/** Refusals the failed-auth limiter counts: the credential itself was wrong. */
function isCredentialRefusal(err: unknown): boolean {
  return (
    err instanceof InvalidToken || err instanceof MalformedCredential || err instanceof AmbiguousCredential
  )
}

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
    // Every answer carries X-Request-Id. A forwarded one gets it in the head the forwarder writes;
    // every other answer from res.setHeader(), set where it is written (setting it here would
    // make Node merge the forwarder's header list through its slow path on every request).
    const trace: DecisionTrace = { cache: 'none' }
    let mountIndex = -1
    let authMs = 0
    let upstreamMs = 0
    let upstreamStatus = 0
    let reason: Reason | 'ok' = 'ok'
    let uploadCut = false
    const client = resolveClient(socket.remoteAddress, req.headers, deps.trusted ?? null)
    try {
      // CORS (server/cors.ts): a preflight is answered here, credential-less and never forwarded.
      if (req.method === 'OPTIONS') res.setHeader('x-request-id', requestId)
      const cors = applyCors(deps.routes, req, res)
      if (cors === PREFLIGHT_ANSWERED) return
      const retryAfter = deps.limiter?.blockedFor(client.address, deps.now())
      if (retryAfter) throw new TooManyFailures('auth_failures', retryAfter)
      const method = req.method ?? 'GET'
      // A GET with `Content-Length: 1000000000` trickled a byte at a time once held an upstream
      // socket for ever; such a body has no meaning (RFC 9110 §9.3.1).
      if (NO_BODY_METHODS.has(method) && hasBody(req)) throw new BadRequest('body_not_allowed')
      const local = deps.local?.match(rawUrl)
      if (local) {
        res.setHeader('x-request-id', requestId)
        return await local(req, res)
      }
      const decideAt = deps.decidePath ? decisionTarget(rawUrl, deps.decidePath) : null
      if (decideAt !== null) {
        // The decision endpoint: the same stages about the request a data plane names, no forward.
        res.setHeader('x-request-id', requestId)
        const src = originalRequest(req, decideAt)
        const decided = decideRequest(deps, src, client, socket, requestId, trace)
        const plan = decided instanceof Promise ? await decided : decided
        authMs = performance.now() - started
        return answerDecision(res, plan, trace.route as RouteMatch, deps.rewrite, src)
      }
      const decided = decideRequest(
        deps,
        { method, rawUrl, headers: req.headers, rawHeaders: req.rawHeaders },
        client,
        socket,
        requestId,
        trace,
      )
      const plan = decided instanceof Promise ? await decided : decided
      const route = trace.route as RouteMatch
      if (plan.kind === 'forward') {
        // In the head the forwarder writes; CORS headers over the upstream's own (errors get them
        // from res, set by applyCors).
        const extra = plan.patch.responseHeaders
        plan.patch.responseHeaders = cors
          ? { 'x-request-id': requestId, ...extra, ...cors }
          : extra === NO_RESPONSE_HEADERS
            ? { 'x-request-id': requestId }
            : { 'x-request-id': requestId, ...extra }
      } else {
        res.setHeader('x-request-id', requestId)
        if (cors) plan.patch.responseHeaders = { ...plan.patch.responseHeaders, ...cors }
      }
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
      const route = trace.route
      if (!authMs) authMs = performance.now() - started
      if (isCredentialRefusal(err)) deps.limiter?.refused(client.address, deps.now())
      const answer = toHttpError(uploadCut ? new RequestTimeout('upload_too_slow') : err)
      reason = answer.reason
      if (trace.matched) deps.lastUsed.refused(trace.matched.hash, deps.now(), answer.reason)
      if (answer.reason === 'tls')
        deps.log.warn(
          { err: (err as Error).message, mount: route?.mount.prefix, requestId },
          'upstream TLS handshake failed',
        )
      if (answer.reason === 'bug')
        deps.log.error({ err, path: loggablePath(rawUrl), requestId }, 'unexpected error in pipeline')
      // A link path refused before its route was known (404, a malformed path) is still a link URL.
      const link = route ? route.linkSecretAt !== undefined : rawUrl.includes('/link/')
      if (!res.headersSent && !res.destroyed) {
        res.setHeader('x-request-id', requestId)
        writeAnswer(req, res, answer, link ? LINK_RESPONSE_HEADERS : NO_RESPONSE_HEADERS)
      } else res.destroy()
    } finally {
      if (uploadCut) reason = 'upload_too_slow'
      deps.metrics.inflight--
      const { route, decision } = trace
      if (route) mountIndex = route.mount.index
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
        cache: trace.cache,
        authSeconds: authMs / 1000,
        upstreamStatus,
        upstreamHeadersSeconds: upstreamMs / 1000,
        totalSeconds: totalMs / 1000,
        bytesIn,
        bytesOut,
      })
      if (deps.accessLog) {
        deps.accessLog.write({
          requestId,
          method: req.method,
          path: loggablePath(rawUrl),
          status: res.statusCode,
          mount: route?.mount.prefix,
          via: trace.via,
          tokenId: decision?.tokenId ?? trace.matched?.id,
          user: decision?.user || undefined,
          scope: decision ? scopeLabel(decision.scope) : undefined,
          reason,
          cache: trace.cache,
          bytesIn,
          bytesOut,
          authMs,
          upstreamMs,
          totalMs,
          remote: client.address,
        })
      }
    }
  }
}
