// Route match: which mount a request is for, where it goes upstream, and which action (permission)
// it needs. Runs before any credential work, so an unknown path is 404 without a token lookup.
// Also the place that finds a `/link/<token>/` prefix (by offsets: the secret is read only by
// credential/extract.ts) and refuses paths that would climb out of the mount once decoded.
import { BadRequest, MalformedCredential, RouteNotFound } from '../errors.js'
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
  /** Path below the mount as the client sent it (raw bytes), link prefix removed; `/studies/…`. */
  subPath: string
  /** Path to append to `target`'s path, raw (for WADO-URI the `/wado` is dropped: it is in `target`). */
  upstreamPath: string
  /** Raw query string without `?`, byte for byte as sent ('' when none). */
  query: string
  /** [start, end) of the secret inside the raw URL when the request used `/link/<token>/`. */
  linkSecretAt?: [number, number]
  /** On a mount with `resources`: the resource type, id, action and attributes the path names. */
  resource?: ResourceMatch
}

/** Segments that would climb, or hide a separator, once an upstream decodes them. */
const UNSAFE_SEGMENT = /^(?:\.|%2e){1,2}$/i
const ENCODED_SEPARATOR = /%2f|%5c|\\/i

function checkPath(path: string): void {
  for (const seg of path.split('/')) {
    if (UNSAFE_SEGMENT.test(seg) || ENCODED_SEPARATOR.test(seg)) throw new BadRequest('bad_path')
  }
}

function findMount(routes: CompiledRoutes, path: string): CompiledMount | undefined {
  for (const m of routes.mounts) {
    if (m.prefix === '' || path === m.prefix || path.startsWith(`${m.prefix}/`)) return m
  }
  return undefined
}

function wantsZip(accept: string | undefined, query: string): boolean {
  if (accept?.toLowerCase().includes('application/zip')) return true
  if (!query) return false
  // accept=application/zip, any case, percent-encoded or not (PS3.18 §8.3.3.1 "accept" query parameter).
  return /(?:^|&)accept=[^&]*application(?:\/|%2f)zip/i.test(query)
}

/**
 * Match a request. Throws RouteNotFound (no mount, no rule), BadRequest('bad_path') for dot
 * segments or encoded separators, MalformedCredential('bad_link') for an empty link segment.
 */
export function matchRoute(
  routes: CompiledRoutes,
  method: string,
  rawUrl: string,
  accept?: string,
): RouteMatch {
  const q = rawUrl.indexOf('?')
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const query = q === -1 ? '' : rawUrl.slice(q + 1)
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
  if (subPath === '') subPath = '/'
  checkPath(subPath)

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

  const wado = subPath === '/wado' || subPath.startsWith('/wado/')
  const useWadoTarget = wado && mount.wado !== null
  return {
    mount,
    action,
    download: wantsZip(accept, query),
    target: useWadoTarget ? (mount.wado as URL) : mount.upstream,
    wado,
    subPath,
    upstreamPath: useWadoTarget ? subPath.slice('/wado'.length) : subPath,
    query,
    ...(linkSecretAt ? { linkSecretAt } : {}),
    ...(resource ? { resource: bindResource(resource, subPath) } : {}),
  }
}
