// Rewrite stage: plan everything that changes between the client's request and the upstream's —
// path, query, headers — as one UpstreamPatch (the shape of Envoy ext_authz's OkHttpResponse),
// so the forwarder applies it and a future decision endpoint can return it as headers.
import type { Config } from '../config/schema.js'
import type { Decision } from '../policy/decide.js'
import type { RouteMatch } from '../route/match.js'
import type { StudySetRef } from '../token/study-sets.js'
import { type ClientView, planHeaders } from './identity-headers.js'
import { scopeQuery, stripScopeParams } from './query-scope.js'
import type { UrlRewrite } from './response-urls.js'

export type { ClientView }

/** What to do with the upstream's answer. Data only, so a decision endpoint can return it. */
export interface ResponsePlan {
  /** Rewrite RetrieveURL / BulkDataURI values in DICOM JSON answers (forward/url-rewriter.ts). */
  urls?: UrlRewrite
  /** STOW-RS (`scoping: studies`): add the studies the upstream stored to a study set. */
  record?: {
    into: StudySetRef
  }
  /** `scoping: studies`: an upstream 404 is answered with tokengate's own not_found body. */
  uniformNotFound?: boolean
}

export interface UpstreamPatch {
  /** Path and query to send, relative to the route's target base URL (`/studies?album=a`). */
  path: string
  /** Lower-case header names removed from the client's request. */
  removeHeaders: readonly string[]
  /** Lower-case header name → value set on the upstream request. */
  setHeaders: Record<string, string>
  /** Headers added to the response to the client (link requests: no referrer, no caching). */
  responseHeaders: Record<string, string>
  /** What to do with the answer's body; absent: pass it as it is. */
  response?: ResponsePlan
}

export interface RewriteConfig {
  identityHeaders: Config['identityHeaders']
  /** strippedHeaders(identityHeaders), computed once per config. */
  stripped: readonly string[]
  /** `query` when absent. */
  scoping?: Config['scoping']
  publicUrl?: string | undefined
  /** `scoping: studies` settings; the schema's defaults when absent. */
  studies?: Config['studies']
}

/**
 * The response headers of every answer to a link request, forwarded or refused: a link URL carries
 * the secret, so keep it out of Referer headers and shared caches.
 */
export const LINK_RESPONSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'referrer-policy': 'no-referrer',
  'cache-control': 'private, no-store',
})
/** The response headers of any other request: none (one shared object). */
export const NO_RESPONSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

export function planRewrite(
  route: RouteMatch,
  decision: Decision,
  client: ClientView,
  cfg: RewriteConfig,
): UpstreamPatch {
  // scoping: studies narrows by study (rewrite/study-scope.ts); the upstream gets no album/inbox.
  // The query is re-serialised from what route/match.ts read, with the fewest escapes (which is
  // also what `wadoNormalizeQuery` asked for): never the client's bytes.
  const query =
    cfg.scoping === 'studies' ? stripScopeParams(route.params) : scopeQuery(route.params, decision)
  const headers = planHeaders(
    decision,
    route.mount.config,
    client,
    cfg.identityHeaders,
    cfg.stripped,
    cfg.publicUrl,
  )
  return {
    path: query === '' ? route.upstreamPath : `${route.upstreamPath}?${query}`,
    removeHeaders: headers.remove,
    setHeaders: headers.set,
    responseHeaders: route.linkSecretAt ? LINK_RESPONSE_HEADERS : NO_RESPONSE_HEADERS,
  }
}
