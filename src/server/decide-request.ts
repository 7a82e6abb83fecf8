// The request pipeline's decision part (DESIGN §2): route match (canonical path and query) →
// credential → token lookup → decide → plan, in that order. Shared by the proxy (server/pipeline.ts,
// which then executes the plan) and the decision endpoint (which returns the plan as headers).
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { extractCredential } from '../credential/extract.js'
import type { CacheResult } from '../metrics/registry.js'
import { type Decision, decide } from '../policy/decide.js'
import { checkScopeIds } from '../policy/scope-ids.js'
import { type Plan, planRequest } from '../rewrite/plan.js'
import { readScopeRequest } from '../rewrite/query-scope.js'
import { matchRoute, type RouteMatch } from '../route/match.js'
import type { TokenHash, TokenRecord } from '../token/record.js'
import type { ClientAddress } from './client-address.js'
import type { PipelineDeps } from './pipeline.js'

/** What the decision stages read of the pipeline's dependencies. */
export type DecisionDeps = Pick<PipelineDeps, 'routes' | 'secrets' | 'store' | 'now' | 'lastUsed' | 'rewrite'>

/** What decideRequest() learnt on the way: the access log and metrics read it even when it throws. */
export interface DecisionTrace {
  route?: RouteMatch
  via?: string
  cache: CacheResult
  decision?: Decision
  /** The record the secret matched: its id is logged, and its refusal noted, even when refused. */
  matched?: { hash: TokenHash; id: string }
}

/** The request the decision stages read: the proxied one itself, or the one a data plane names. */
export interface DecisionSource {
  method: string
  rawUrl: string
  headers: IncomingHttpHeaders
  rawHeaders: readonly string[]
}

/**
 * The decision part of the pipeline, in order: route match (canonical path and query), credential,
 * lookup, decide, plan. Used by the proxy (which then executes the plan) and by the decision
 * endpoint (which returns it as headers). Throws the stages' GateErrors (a returned promise rejects
 * with them); fills `trace` as it goes. A cache hit in `query` mode answers without a promise:
 * only a Redis read (a miss, a membership, a study set) makes one.
 */
export function decideRequest(
  deps: DecisionDeps,
  src: DecisionSource,
  client: ClientAddress,
  socket: Socket,
  requestId: string,
  trace: DecisionTrace,
): Plan | Promise<Plan> {
  const route = matchRoute(deps.routes, src.method, src.rawUrl, src.headers.accept)
  trace.route = route
  const credential = extractCredential(src, route, deps.secrets)
  trace.via = credential.via
  const requested = readScopeRequest(route.params)
  checkScopeIds(requested)
  const request: DecisionRequest = {
    deps,
    src,
    client,
    socket,
    requestId,
    trace,
    route,
    credential,
    requested,
  }
  const record = deps.store.peek(credential.hash)
  trace.cache = 'hit'
  if (record !== undefined) return decideFor(request, record)
  trace.cache = 'miss'
  return deps.store.lookup(credential.hash).then((found) => decideFor(request, found))
}

/** What decideRequest() has read by the time the record is known. */
interface DecisionRequest {
  deps: DecisionDeps
  src: DecisionSource
  client: ClientAddress
  socket: Socket
  requestId: string
  trace: DecisionTrace
  route: RouteMatch
  credential: ReturnType<typeof extractCredential>
  requested: ReturnType<typeof readScopeRequest>
}

function decideFor(r: DecisionRequest, record: TokenRecord | null): Plan | Promise<Plan> {
  if (record) r.trace.matched = { hash: r.credential.hash, id: record.id }
  const now = r.deps.now()
  const decided = decide(record, r.route, r.requested, now, r.deps.store)
  return decided instanceof Promise ? decided.then((d) => planFor(r, d, now)) : planFor(r, decided, now)
}

function planFor(r: DecisionRequest, decision: Decision, now: number): Plan | Promise<Plan> {
  const { deps, src, client, socket, trace } = r
  trace.decision = decision
  deps.lastUsed.seen(r.credential.hash, now)
  return planRequest(
    r.route,
    decision,
    {
      method: src.method,
      rawUrl: src.rawUrl,
      // HTTP/2 names the host in :authority (a client may send no Host at all).
      host: src.headers.host ?? (src.headers[':authority'] as string | undefined),
      // From a trusted proxy only (server/client-address.ts): nobody else's are believed.
      forwardedHost: client.forwardedHost,
      forwardedProto: client.forwardedProto,
      forwardedFor: client.forwardedFor,
      remoteAddress: client.address,
      peerAddress: client.peer,
      localAddress: socket.localAddress,
      localPort: socket.localPort,
      encrypted: (socket as TLSSocket).encrypted === true,
      requestId: r.requestId,
      leakedHeaders: r.credential.leaks,
    },
    deps.rewrite,
    deps.store,
  )
}
