// CORS per mount (server stage, before route match): lets a browser viewer served from another
// origin call tokengate directly. A preflight (`OPTIONS` with `Origin` and
// `Access-Control-Request-Method`) is answered here, without a credential, and never forwarded:
// it carries no token, so it must not reach the token stages nor the upstream. Any other request
// gets its CORS headers set on `res` before the stages run, so the forwarded answer and every
// error answer (401/403/404/400…) carry them alike and the viewer can show the refusal.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { CorsConfig } from '../config/schema.js'
import type { CompiledMount, CompiledRoutes } from '../route/compile.js'
import { findMount } from '../route/match.js'

/** Request headers a preflight is always granted: what DICOMweb clients send. */
const BASE_ALLOW_HEADERS = ['Authorization', 'Content-Type', 'Accept'] as const
/**
 * Further request headers granted when a preflight asks for them: harmless ones viewers and HTTP
 * libraries add. Anything else (identity headers an upstream trusts, `X-Forwarded-*`) is not
 * granted, so a page cannot make a browser send it.
 */
const SAFE_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'content-type',
  'accept',
  'accept-language',
  'content-language',
  'cache-control',
  'pragma',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'range',
  'x-requested-with',
  'x-request-id',
])
/** Response headers a page may read: what DICOMweb clients read. */
const EXPOSE_HEADERS = 'Content-Type, Content-Length, Content-Location, Warning, X-Request-Id'
/** Methods a preflight may be granted (OPTIONS itself needs no preflight). */
const GRANTABLE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

/** A mount's CORS settings prepared once (per config object) for the per-request checks. */
interface CorsPolicy {
  any: boolean
  origins: ReadonlySet<string>
  credentials: boolean
  maxAge: string
  /** Methods the mount's rules accept, as `Access-Control-Allow-Methods` lists them. */
  methods: ReadonlySet<string>
  allowMethods: string
}

const policies = new WeakMap<CorsConfig, CorsPolicy>()

function policyOf(cors: CorsConfig, mount: CompiledMount): CorsPolicy {
  let policy = policies.get(cors)
  if (policy) return policy
  const methods = new Set<string>()
  for (const m of GRANTABLE_METHODS)
    if (mount.rules.some((r) => r.methods === null || r.methods.has(m))) methods.add(m)
  policy = {
    any: cors.origins.includes('*'),
    origins: new Set(cors.origins.filter((o) => o !== '*').map((o) => o.toLowerCase())),
    credentials: cors.credentials,
    maxAge: String(cors.maxAge),
    methods,
    allowMethods: [...methods].join(', '),
  }
  policies.set(cors, policy)
  return policy
}

/** `Access-Control-Allow-Headers` for a preflight: the base list plus the safe ones it asks for. */
export function allowHeaders(requested: string | undefined): string {
  const out: string[] = [...BASE_ALLOW_HEADERS]
  if (requested) {
    for (const raw of requested.split(',')) {
      const name = raw.trim().toLowerCase()
      if (SAFE_REQUEST_HEADERS.has(name) && !out.some((h) => h.toLowerCase() === name)) out.push(name)
    }
  }
  return out.join(', ')
}

/** applyCors answered a preflight: run no stage. */
export const PREFLIGHT_ANSWERED = true

/**
 * Apply the mount's CORS policy to a request. Returns PREFLIGHT_ANSWERED when the request was a
 * preflight and has been answered (204). Otherwise the CORS headers are set on `res` (so error
 * answers carry them) and returned, for the caller to lay over the upstream's answer (so an
 * upstream's own `Access-Control-*` cannot replace them); null when the mount has no `cors`, the
 * request no `Origin`, or the Origin is not listed.
 */
export function applyCors(
  routes: CompiledRoutes,
  req: IncomingMessage,
  res: ServerResponse,
): typeof PREFLIGHT_ANSWERED | Record<string, string> | null {
  const origin = req.headers.origin
  if (origin === undefined) return null
  const rawUrl = req.url ?? '/'
  const q = rawUrl.indexOf('?')
  const mount = findMount(routes, q === -1 ? rawUrl : rawUrl.slice(0, q))
  const cors = mount?.config.cors
  if (!mount || !cors) return null
  const policy = policyOf(cors, mount)
  const allowed = policy.any || policy.origins.has(origin.toLowerCase())
  // The answer depends on Origin whenever a list decides it: caches must key on it.
  if (!policy.any) res.setHeader('vary', 'Origin')
  const granted: Record<string, string> = {}
  if (allowed) {
    granted['access-control-allow-origin'] = policy.any ? '*' : origin
    if (policy.credentials) granted['access-control-allow-credentials'] = 'true'
  }
  const requestedMethod = req.headers['access-control-request-method']
  if (req.method !== 'OPTIONS' || requestedMethod === undefined) {
    if (!allowed) return null
    granted['access-control-expose-headers'] = EXPOSE_HEADERS
    for (const name in granted) res.setHeader(name, granted[name] as string)
    return granted
  }
  // A preflight: answered here whatever the origin; an origin not listed gets no grant, and the
  // browser then refuses the real request itself.
  granted['content-length'] = '0'
  if (allowed && policy.methods.has(requestedMethod.toUpperCase())) {
    granted['access-control-allow-methods'] = policy.allowMethods
    granted['access-control-allow-headers'] = allowHeaders(
      req.headers['access-control-request-headers'] as string | undefined,
    )
    granted['access-control-max-age'] = policy.maxAge
  }
  res.writeHead(PREFLIGHT_STATUS, granted)
  res.end()
  return PREFLIGHT_ANSWERED
}

/** 204 No Content: a preflight answer has no body (Fetch standard, CORS-preflight "ok status"). */
const PREFLIGHT_STATUS = 204
