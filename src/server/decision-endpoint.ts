// The decision endpoint (`decisionEndpoint.path`, default `/_tokengate/decide`) on the public
// listener: nginx `auth_request`, Traefik `forwardAuth` and Envoy `ext_authz` (HTTP service) ask
// whether a request may pass, and how the data plane must send it upstream. This module only reads
// which request is asked about and writes the answer; the decision itself is server/pipeline.ts's
// decideRequest(), the same stages (route match, canonical path and query, credential, lookup,
// decide, plan) as the proxy, so there is never a second copy of the rules.
//
// Who is believed: anyone on the public listener can call this, so the original request is read
// from exactly one of three shapes, and a 200 says no more than the proxy would act on — the
// decision for a credential the caller already holds. Refusals are the proxy's own (and count in
// the failed-auth limiter in the pipeline's one catch).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { AmbiguousRequest, BadRequest, NeedsProxy } from '../errors.js'
import { upstreamPath } from '../forward/upstream-headers.js'
import type { RewriteConfig } from '../rewrite/patch.js'
import type { Plan } from '../rewrite/plan.js'
import type { RouteMatch } from '../route/match.js'
import type { DecisionSource } from './decide-request.js'

/** The canonical, scoped path and query the data plane must send upstream (path only). */
export const UPSTREAM_URI_HEADER = 'x-tokengate-upstream-uri'
/** The token's id, whatever `identityHeaders.tokenId` is named. */
export const TOKEN_ID_HEADER = 'x-tokengate-token-id'

const QUESTION = 63
const SLASH = 47
// RFC 9110 §5.6.2 token: what a method may be.
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Where `rawUrl` stands to the endpoint `path`: '' for the endpoint itself (nginx, Traefik), the
 * original path and query for `<path>/…` (Envoy's path prefix), null when it is not the endpoint.
 * A few `startsWith`: nothing allocated on the proxied hot path.
 */
export function decisionTarget(rawUrl: string, path: string): string | null {
  if (!rawUrl.startsWith(path)) return null
  const next = rawUrl.charCodeAt(path.length)
  if (Number.isNaN(next) || next === QUESTION) return ''
  if (next === SLASH) return rawUrl.slice(path.length)
  return null
}

/** The one value of a header, from the raw list (Node would join repeats); undefined when absent. */
function single(req: IncomingMessage, name: string): string | undefined {
  let value: string | undefined
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== name) continue
    if (value !== undefined) throw new AmbiguousRequest('two_originals')
    value = raw[i + 1] as string
  }
  return value
}

/** The request a data plane asks about, and whether that data plane can send the decided URI. */
export interface OriginalRequest extends DecisionSource {
  /**
   * Traefik's forwardAuth cannot rewrite the request it forwards (no `proxy_pass …$var`, no Lua):
   * it sends the client's bytes, so it may only pass a request that already is its own canonical,
   * scoped form — anything else would reach the upstream unscoped.
   */
  forwardsAsIs: boolean
}

/**
 * The request the data plane asks about. `below` is decisionTarget()'s answer. Throws
 * BadRequest('bad_original') when none is named, AmbiguousRequest('two_originals') when it is
 * named more than one way.
 */
export function originalRequest(req: IncomingMessage, below: string): OriginalRequest {
  const nginxUri = single(req, 'x-original-uri')
  const traefikUri = single(req, 'x-forwarded-uri')
  const shapes = (nginxUri !== undefined ? 1 : 0) + (traefikUri !== undefined ? 1 : 0) + (below ? 1 : 0)
  if (shapes > 1) throw new AmbiguousRequest('two_originals')
  let method: string | undefined
  let rawUrl: string
  if (nginxUri !== undefined) {
    // nginx's subrequest keeps the original method; X-Original-Method, when set, says it outright.
    method = single(req, 'x-original-method') ?? req.method
    rawUrl = nginxUri
  } else if (traefikUri !== undefined) {
    // Traefik's forwardAuth request is always a GET: the method is only in X-Forwarded-Method.
    method = single(req, 'x-forwarded-method')
    rawUrl = traefikUri
  } else if (below) {
    // Envoy's ext_authz HTTP service: the original method, the original path after the prefix.
    method = req.method
    rawUrl = below
  } else throw new BadRequest('bad_original')
  if (!method || !METHOD.test(method) || rawUrl.charCodeAt(0) !== SLASH) throw new BadRequest('bad_original')
  return {
    method,
    rawUrl,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    forwardsAsIs: traefikUri !== undefined,
  }
}

/** The plan's reason for needing tokengate as the proxy, or null for a plain forward. */
function needsProxy(plan: Plan, route: RouteMatch, asked: OriginalRequest): NeedsProxy | null {
  switch (plan.kind) {
    case 'forward':
      // Rewriting response URLs is cosmetic; recording what a STOW stored is not.
      if (plan.patch.response?.record) return new NeedsProxy('stow_record')
      // What a data plane that cannot rewrite sends below the mount is the client's own bytes.
      if (asked.forwardsAsIs && asked.rawUrl.slice(route.mount.prefix.length) !== plan.patch.path)
        return new NeedsProxy('needs_rewrite')
      return null
    case 'split':
      return new NeedsProxy('split_search')
    case 'empty':
      return new NeedsProxy('empty_search')
    case 'store':
      return new NeedsProxy('stow_record')
    case 'wado':
      return new NeedsProxy('archive_check')
    case 'unlink':
    case 'adopt':
      return new NeedsProxy('study_set_change')
  }
}

/**
 * Answer 200 with the decision as headers: the upstream path and query, the identity headers
 * (configured names) and X-Tokengate-Token-Id. Never the upstream's own credentials
 * (`upstreamAuth`) nor the X-Forwarded-* tokengate would add: the data plane sets those itself.
 * Throws NeedsProxy for a plan that is more than a forward, or one a data plane that forwards the
 * client's bytes as they are (Traefik) would send unscoped.
 */
export function answerDecision(
  res: ServerResponse,
  plan: Plan,
  route: RouteMatch,
  cfg: RewriteConfig,
  asked: OriginalRequest,
): void {
  const refusal = needsProxy(plan, route, asked)
  if (refusal) throw refusal
  const set = plan.patch.setHeaders
  const ids = cfg.identityHeaders
  const headers: Record<string, string> = {
    [UPSTREAM_URI_HEADER]: upstreamPath(route.target, plan.patch.path),
    'cache-control': 'no-store',
    'content-length': '0',
  }
  const names = [ids.user, ids.scope, ids.tokenId, ...Object.values(ids.attributes ?? {})]
  for (const name of names) {
    const value = set[name.toLowerCase()]
    if (value !== undefined) headers[name.toLowerCase()] = value
  }
  headers[TOKEN_ID_HEADER] = set[ids.tokenId.toLowerCase()] as string
  res.writeHead(200, headers)
  res.end()
}
