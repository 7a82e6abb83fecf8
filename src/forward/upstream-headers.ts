// Forward stage, headers: what goes to the upstream and what comes back. RFC 7230 §6.1 hop-by-hop
// headers (and any the Connection header names) never cross the proxy in either direction; the
// rest is passed as a reverse proxy conventionally does (http-proxy's `changeOrigin`): Host is
// the target's. The client's X-Forwarded-* never pass as sent: the patch sets them (from a trusted
// proxy's chain or tokengate's own view, rewrite/identity-headers.ts). The patch's header removals
// (compared by normalised name: `X_Remote_User` is `x-remote-user`) and additions are applied.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { UpstreamPatch } from '../rewrite/patch.js'

/** RFC 7230 §6.1 (+ the non-standard Proxy-Connection): meaningful for one connection only. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/**
 * Not forwarded either: Host is the target's; Expect is answered by tokengate (100-continue, once
 * the request is authorised), so the upstream must not wait for it again. Every `X-Forwarded-*`
 * (For/Proto/Host/Port are rebuilt by the patch; Prefix, Server, Ssl… are never believed).
 */
const REBUILT = new Set(['host', 'expect'])

/**
 * Whether the client sends a body: HTTP/1.1 says so in Content-Length / Transfer-Encoding; HTTP/2
 * by not ending the stream with its HEADERS frame (Content-Length is optional there).
 */
export function requestHasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream
  // On HTTP/2 a Content-Length, when sent, must match the DATA frames (RFC 9113 §8.1.1).
  if (req.httpVersionMajor === 2 && stream && length === undefined) return stream.endAfterHeaders === false
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** Names listed in a Connection header (RFC 7230 §6.1): hop-by-hop too. Usually none. */
export function connectionListed(value: string | string[] | undefined): Set<string> | null {
  // The usual values name no header: skip the split.
  if (value === undefined || value === 'keep-alive' || value === 'close') return null
  const names = new Set<string>()
  for (const part of String(value).split(',')) {
    const name = part.trim().toLowerCase()
    if (name && name !== 'close' && name !== 'keep-alive') names.add(name)
  }
  return names.size ? names : null
}

// patch.removeHeaders is one array per config: turn it into a Set once.
const removalSets = new WeakMap<readonly string[], ReadonlySet<string>>()
function removalSet(names: readonly string[]): ReadonlySet<string> {
  let set = removalSets.get(names)
  if (!set) {
    set = new Set(names)
    removalSets.set(names, set)
  }
  return set
}

/** Whether a client header stays behind: rebuilt, X-Forwarded-*, or removed by the patch; `_` read as `-` (CGI's reading). */
function dropped(removed: ReadonlySet<string>, name: string): boolean {
  // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are the request line, not headers.
  if (name.charCodeAt(0) === 58) return true
  if (REBUILT.has(name) || removed.has(name) || name.startsWith('x-forwarded-')) return true
  if (!name.includes('_')) return false
  const n = name.replace(/_/g, '-')
  return REBUILT.has(n) || removed.has(n) || HOP_BY_HOP.has(n) || n.startsWith('x-forwarded-')
}

/**
 * The upstream request's headers as a flat `[name, value, …]` list (undici's cheapest form):
 * the client's minus hop-by-hop and the patch's removals, plus the patch's additions and Host.
 */
export function upstreamRequestHeaders(req: IncomingMessage, target: URL, patch: UpstreamPatch): string[] {
  const headers = req.headers
  const removed = removalSet(patch.removeHeaders)
  const listed = connectionListed(headers.connection)
  const set = patch.setHeaders
  const out: string[] = []
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || dropped(removed, name) || name in set) continue
    if (listed?.has(name)) continue
    const value = headers[name]
    if (value === undefined) continue
    if (typeof value === 'string') out.push(name, value)
    else for (const v of value) out.push(name, v)
  }
  for (const name in set) out.push(name, set[name] as string)
  out.push('host', target.host)
  return out
}

/**
 * The client response's headers from the upstream's, as a flat `[name, value, …]` list for
 * `writeHead` (no object to mutate): hop-by-hop removed (RFC 9110 §7.6.1; Node frames the
 * response to the client itself), the names in `drop` removed (a rewritten body's length and
 * ETag), `extra` (the patch's response headers) set over the upstream's.
 */
export function clientResponseHeaders(
  headers: IncomingHttpHeaders,
  extra: Readonly<Record<string, string>>,
  drop?: ReadonlySet<string>,
): (string | string[])[] {
  const listed = connectionListed(headers.connection)
  const out: (string | string[])[] = []
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || name in extra || listed?.has(name) || drop?.has(name)) continue
    const value = headers[name]
    if (value !== undefined) out.push(name, value)
  }
  for (const name in extra) out.push(name, extra[name] as string)
  return out
}

/**
 * The path to request from the upstream: the target's base path joined with the planned path
 * (which starts with `/`, or is empty or a bare `?query` for WADO-URI), one slash at the seam, a
 * target query merged with `&` — the same join http-proxy-3 makes.
 */
export function upstreamPath(target: URL, path: string): string {
  const base = target.pathname
  let joined: string
  if (path === '' || path.startsWith('?')) joined = base + path
  else if (base.endsWith('/')) joined = base + (path.startsWith('/') ? path.slice(1) : path)
  else joined = base + (path.startsWith('/') ? path : `/${path}`)
  if (!target.search) return joined
  const q = joined.indexOf('?')
  return q === -1 ? joined + target.search : `${joined.slice(0, q)}${target.search}&${joined.slice(q + 1)}`
}
