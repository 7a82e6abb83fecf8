// Rewrite stage, headers: strip `Authorization` and every client-sent identity header (so a
// client can never pose as someone else to the upstream), add tokengate's identity headers and the
// upstream's own credentials, and a RFC 7239 `Forwarded` element (Orthanc builds its response
// URLs from it).
import type { Config, MountConfig } from '../config/schema.js'
import type { Decision, Scope } from '../policy/decide.js'

export interface HeaderPlan {
  /** Lower-case names removed from the client request before forwarding. */
  remove: readonly string[]
  /** Lower-case name → value set on the upstream request. */
  set: Record<string, string>
}

export interface ClientView {
  host: string | undefined
  remoteAddress: string | undefined
  encrypted: boolean
  /** Forwarded as X-Request-Id so upstream logs can be joined with ours. */
  requestId?: string
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

/** RFC 7239 §4: quote values that are not tokens (IPv6, host:port). */
export function forwardedValue(v: string): string {
  return /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`
}

export function forwardedHeader(client: ClientView): string {
  const parts: string[] = []
  if (client.remoteAddress) {
    const addr = client.remoteAddress.includes(':') ? `[${client.remoteAddress}]` : client.remoteAddress
    parts.push(`for=${forwardedValue(addr)}`)
  }
  if (client.host) parts.push(`host=${forwardedValue(client.host)}`)
  parts.push(`proto=${client.encrypted ? 'https' : 'http'}`)
  return parts.join(';')
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

/** Names stripped from every request, computed once per config. */
export function strippedHeaders(cfg: Config['identityHeaders']): string[] {
  const names = ['authorization', 'forwarded', cfg.user, cfg.tokenId, cfg.scope, ...cfg.strip]
  // Attribute headers are identity too: a client's copy never reaches the upstream.
  names.push(...Object.values(cfg.attributes ?? {}))
  return [...new Set(names.map((n) => n.toLowerCase()))]
}

export function planHeaders(
  decision: Decision,
  mount: MountConfig,
  client: ClientView,
  cfg: Config['identityHeaders'],
  remove: readonly string[],
): HeaderPlan {
  const set: Record<string, string> = {
    [cfg.tokenId.toLowerCase()]: decision.tokenId,
    [cfg.scope.toLowerCase()]: scopeLabel(decision.scope),
    forwarded: forwardedHeader(client),
  }
  if (decision.user) set[cfg.user.toLowerCase()] = decision.user
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
  return { remove, set }
}
