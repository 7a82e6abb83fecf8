// Rewrite stage, headers: strip `Authorization` and every client-sent identity header (so a
// client can never pose as someone else to the upstream), add tokengate's identity headers and the
// upstream's own credentials, a RFC 7239 `Forwarded` element and X-Forwarded-* (Orthanc builds its
// response URLs from them). Names are compared normalised (lower case, `_` read as `-`): WSGI,
// PHP, Rack and CGI map `X_Tokengate_User` to the same variable as `X-Tokengate-User`. The host
// named upstream is never the client's: `publicUrl`'s, else the address the client connected to.
import { type Config, DEFAULT_STRIP_HEADERS, type MountConfig } from '../config/schema.js'
import type { Decision, Scope } from '../policy/decide.js'

export interface HeaderPlan {
  /** Normalised names removed from the client request before forwarding. */
  remove: readonly string[]
  /** Lower-case name → value set on the upstream request. */
  set: Record<string, string>
}

export interface ClientView {
  /** The client's address, after trusted-proxy resolution (server/client-address.ts). */
  remoteAddress: string | undefined
  /** The TCP peer (a trusted proxy, or the client): the hop appended to X-Forwarded-For. */
  peerAddress?: string | undefined
  /** X-Forwarded-For / -Proto as a trusted proxy sent them (absent from anyone else). */
  forwardedFor?: string | undefined
  forwardedProto?: string | undefined
  encrypted: boolean
  /** The local address and port the client connected to: tokengate's own host without publicUrl. */
  localAddress?: string | undefined
  localPort?: number | undefined
  /** Forwarded as X-Request-Id so upstream logs can be joined with ours. */
  requestId?: string
  /** Client headers whose value carries the request's own secret (credential stage): removed. */
  leakedHeaders?: readonly string[] | undefined
}

/** Scope as one header value: `album:<id>`, `inbox`, `user`, `api`. */
export function scopeLabel(scope: Scope): string {
  switch (scope.kind) {
    case 'album':
    case 'user-album':
      return `album:${scope.album}`
    case 'inbox':
      return 'inbox'
    case 'user':
      return 'user'
    case 'api':
      return 'api'
  }
}

/** A header name as CGI-style servers read it: lower case, `_` and `-` the same. */
export function normalizeHeaderName(name: string): string {
  const lower = name.toLowerCase()
  return lower.includes('_') ? lower.replace(/_/g, '-') : lower
}

/** RFC 7239 §4: quote values that are not tokens (IPv6, host:port). */
export function forwardedValue(v: string): string {
  return /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`
}

/** The origin tokengate names to the upstream (Forwarded host/proto, X-Forwarded-Host/-Port). */
export interface ForwardedOrigin {
  host: string | undefined
  proto: 'http' | 'https'
  port: string
  /** The Forwarded element's `host=…;proto=…` part, built once per origin. */
  tail: string
}

function origin(host: string | undefined, proto: 'http' | 'https', port: string): ForwardedOrigin {
  return { host, proto, port, tail: `${host ? `host=${forwardedValue(host)};` : ''}proto=${proto}` }
}

let lastPublic: [string, ForwardedOrigin] | undefined
/**
 * `publicUrl`'s host and scheme, else the local address and port the client connected to and
 * tokengate's own scheme: never the client's Host, which the upstream would build URLs from
 * (`Host: h/studies/<X>/x` once made Orthanc name study X in a STOW answer).
 */
export function forwardedOrigin(
  client: Pick<ClientView, 'localAddress' | 'localPort' | 'encrypted'>,
  publicUrl: string | undefined,
): ForwardedOrigin {
  if (publicUrl) {
    if (lastPublic?.[0] !== publicUrl) {
      const url = new URL(publicUrl)
      const proto = url.protocol === 'https:' ? 'https' : 'http'
      lastPublic = [publicUrl, origin(url.host, proto, url.port || (proto === 'https' ? '443' : '80'))]
    }
    return lastPublic[1]
  }
  // A listener has one or a few local addresses: the last answer usually serves (hot path).
  const local = lastLocal
  if (
    local &&
    local.address === client.localAddress &&
    local.port === client.localPort &&
    local.encrypted === client.encrypted
  )
    return local.origin
  const proto = client.encrypted ? 'https' : 'http'
  let addr = client.localAddress
  // A dual-stack listener sees an IPv4 client's connection on `::ffff:10.0.0.5`: name 10.0.0.5.
  if (addr?.startsWith('::ffff:') && addr.includes('.')) addr = addr.slice(7)
  const port = String(client.localPort ?? (proto === 'https' ? 443 : 80))
  const found = addr
    ? origin(addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`, proto, port)
    : origin(undefined, proto, proto === 'https' ? '443' : '80')
  lastLocal = {
    address: client.localAddress,
    port: client.localPort,
    encrypted: client.encrypted,
    origin: found,
  }
  return found
}
let lastLocal:
  | { address: string | undefined; port: number | undefined; encrypted: boolean; origin: ForwardedOrigin }
  | undefined

export function forwardedHeader(
  client: ClientView,
  publicUrl?: string,
  origin: ForwardedOrigin = forwardedOrigin(client, publicUrl),
): string {
  return `${forPart(client.remoteAddress)}${origin.tail}`
}

let lastFor: [string | undefined, string] = [undefined, '']
/** `for=<client>;`: the last client's is reused (keep-alive connections send request after request). */
function forPart(remote: string | undefined): string {
  if (lastFor[0] === remote) return lastFor[1]
  const part = remote ? `for=${forwardedValue(remote.includes(':') ? `[${remote}]` : remote)};` : ''
  lastFor = [remote, part]
  return part
}

function upstreamAuthHeader(auth: MountConfig['upstreamAuth']): [string, string] | null {
  if (!auth) return null
  if ('basic' in auth) {
    const b64 = Buffer.from(`${auth.basic.user}:${auth.basic.password}`).toString('base64')
    return ['authorization', `Basic ${b64}`]
  }
  if ('bearer' in auth) return ['authorization', `Bearer ${auth.bearer}`]
  return [auth.header.name.toLowerCase(), auth.header.value]
}

/** Normalised names stripped from every request, computed once per config. */
export function strippedHeaders(
  cfg: Pick<Config['identityHeaders'], 'user' | 'tokenId' | 'scope' | 'strip' | 'attributes'> & {
    stripDefault?: readonly string[]
  },
): string[] {
  const names = [
    'authorization',
    'forwarded',
    cfg.user,
    cfg.tokenId,
    cfg.scope,
    ...(cfg.stripDefault ?? DEFAULT_STRIP_HEADERS),
    ...cfg.strip,
    // Attribute headers are identity too: a client's copy never reaches the upstream.
    ...Object.values(cfg.attributes ?? {}),
  ]
  return [...new Set(names.map(normalizeHeaderName))]
}

function appended(previous: string | undefined, value: string): string {
  return previous ? `${previous},${value}` : value
}

/** The identity header names in lower case, once per config (the hot path sets them on every request). */
const lowered = new WeakMap<Config['identityHeaders'], { tokenId: string; scope: string; user: string }>()
function lowerNames(cfg: Config['identityHeaders']): { tokenId: string; scope: string; user: string } {
  let names = lowered.get(cfg)
  if (!names) {
    names = {
      tokenId: cfg.tokenId.toLowerCase(),
      scope: cfg.scope.toLowerCase(),
      user: cfg.user.toLowerCase(),
    }
    lowered.set(cfg, names)
  }
  return names
}

export function planHeaders(
  decision: Decision,
  mount: MountConfig,
  client: ClientView,
  cfg: Config['identityHeaders'],
  remove: readonly string[],
  publicUrl?: string,
): HeaderPlan {
  const origin = forwardedOrigin(client, publicUrl)
  const names = lowerNames(cfg)
  const set: Record<string, string> = {
    [names.tokenId]: decision.tokenId,
    [names.scope]: scopeLabel(decision.scope),
    forwarded: forwardedHeader(client, publicUrl, origin),
    // A trusted proxy's chain is kept and our peer appended; anyone else's is not believed.
    'x-forwarded-for': appended(client.forwardedFor, client.peerAddress ?? client.remoteAddress ?? ''),
    'x-forwarded-proto': appended(client.forwardedProto, client.encrypted ? 'https' : 'http'),
    'x-forwarded-port': origin.port,
  }
  if (origin.host) set['x-forwarded-host'] = origin.host
  if (decision.user) set[names.user] = decision.user
  // Token attributes under their configured header names (for…in: no allocation per request).
  const attributes = cfg.attributes
  if (attributes && decision.attrs) {
    for (const name in attributes) {
      const value = decision.attrs[name]
      if (value) set[(attributes[name] as string).toLowerCase()] = value
    }
  }
  if (client.requestId) set['x-request-id'] = client.requestId
  const auth = upstreamAuthHeader(mount.upstreamAuth)
  if (auth) set[auth[0]] = auth[1]
  // Rare (a client echoing its own link URL in Referer): a fresh list only then.
  const leaked = client.leakedHeaders
  return { remove: leaked?.length ? [...remove, ...leaked.map(normalizeHeaderName)] : remove, set }
}
