// Route match: which mount a request is for, where it goes upstream, and which action (permission)
// it needs. Runs before any credential work, so an unknown path is 404 without a token lookup.
// Also the place that finds a `/link/<token>/` prefix (by offsets: the secret is read only by
// credential/extract.ts) and reads the path and query canonically (route/canonical-path.ts,
// rewrite/canonical-query.ts): rules match what the upstream will read, and a target two parsers
// could read differently is refused here, before any lookup.
import { AmbiguousRequest, MalformedCredential, RouteNotFound } from '../errors.js'
import { type ParsedQuery, parseQuery } from '../rewrite/canonical-query.js'
import { canonicalPath } from './canonical-path.js'
import type { CompiledMount, CompiledRoutes } from './compile.js'
import { bindResource, type ResourceBinding, type ResourceMatch } from './resources.js'

export type Action = 'read' | 'write' | 'download' | 'appropriate'

export interface RouteMatch {
  mount: CompiledMount
  /** The permission the method + path need. */
  action: Action
  /** A zip download (`Accept: application/zip` or `accept=application/zip`) also needs `download`. */
  download: boolean
  /** Upstream base URL (the mount's `upstream`, or its `wado` for WADO-URI). */
  target: URL
  /** True when the request is WADO-URI (`<mount>/wado`). */
  wado: boolean
  /** Path below the mount, link prefix removed, canonical (route/canonical-path.ts); `/studies/…`. */
  subPath: string
  /** Path to append to `target`'s path, canonical (for WADO-URI the `/wado` is dropped: it is in `target`). */
  upstreamPath: string
  /** The query without `?`, re-serialised canonically from `params` ('' when none). */
  query: string
  /** The query as tokengate read it (rewrite/canonical-query.ts): what every later stage decides on. */
  params: ParsedQuery
  /** [start, end) of the secret inside the raw URL when the request used `/link/<token>/`. */
  linkSecretAt?: [number, number]
  /** On a mount with `resources`: the resource type, id, action and attributes the path names. */
  resource?: ResourceMatch
}

function findMount(routes: CompiledRoutes, path: string): CompiledMount | undefined {
  for (const m of routes.mounts) {
    if (m.prefix === '' || path === m.prefix || path.startsWith(`${m.prefix}/`)) return m
  }
  return undefined
}

// application/zip, application/x-zip, application/x-zip-compressed, any case (not gzip).
const ZIP = /[/-]zip\b/i

/** A zip asked for by the Accept header or the `accept` query parameter (PS3.18 §8.3.3.1). */
function wantsZip(accept: string | undefined, query: ParsedQuery): boolean {
  if (accept !== undefined && ZIP.test(accept)) return true
  // Only the exact name `accept` gets here: other spellings were refused by parseQuery.
  for (const p of query.params) if (p.name === 'accept' && ZIP.test(p.value)) return true
  return false
}

/**
 * Match a request. Throws RouteNotFound (no mount, no rule), BadRequest('bad_path') for dot
 * segments or encoded separators, AmbiguousRequest for a target other parsers could read
 * differently (docs/request-rules.md), MalformedCredential('bad_link') for an empty link segment.
 */
export function matchRoute(
  routes: CompiledRoutes,
  method: string,
  rawUrl: string,
  accept?: string,
): RouteMatch {
  // A fragment never belongs in a request target (RFC 9112 §3.2); upstreams that parse URLs
  // would drop everything after it, the scope tokengate adds included.
  if (rawUrl.includes('#')) throw new AmbiguousRequest('fragment')
  const q = rawUrl.indexOf('?')
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const mount = findMount(routes, path)
  if (!mount) throw new RouteNotFound('no_mount')

  let subPath = path.slice(mount.prefix.length)
  let linkSecretAt: [number, number] | undefined
  if (subPath.startsWith('/link/')) {
    const start = mount.prefix.length + '/link/'.length
    let end = path.indexOf('/', start)
    if (end === -1) end = path.length
    if (end === start) throw new MalformedCredential('bad_link')
    linkSecretAt = [start, end]
    subPath = path.slice(end)
  }
  subPath = subPath === '' ? '/' : canonicalPath(subPath)

  let action: RouteMatch['action'] | undefined
  let resource: ResourceBinding | undefined
  for (const rule of mount.rules) {
    if ((rule.methods === null || rule.methods.has(method)) && rule.pattern.test(subPath)) {
      action = rule.action
      resource = rule.resource
      break
    }
  }
  if (!action) {
    const err = new RouteNotFound('no_rule')
    err.mountIndex = mount.index
    throw err
  }

  const params = parseQuery(q === -1 ? '' : rawUrl.slice(q + 1))
  const wado = subPath === '/wado' || subPath.startsWith('/wado/')
  const useWadoTarget = wado && mount.wado !== null
  return {
    mount,
    action,
    download: wantsZip(accept, params),
    target: useWadoTarget ? (mount.wado as URL) : mount.upstream,
    wado,
    subPath,
    upstreamPath: useWadoTarget ? subPath.slice('/wado'.length) : subPath,
    query: params.text,
    params,
    ...(linkSecretAt ? { linkSecretAt } : {}),
    ...(resource ? { resource: bindResource(resource, subPath) } : {}),
  }
}
