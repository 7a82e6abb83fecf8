// Token records: the TokenRecord type and its Redis hash form. The only place record fields are
// named, so the store, the cache and the admin operations can never disagree on a spelling.
import { deserializeGrants, type Grant, serializeGrants } from '../policy/grants.js'
import type { Action } from '../route/match.js'

/** sha256 hex of a secret: how records are keyed and looked up (the secret itself is never stored). */
export type TokenHash = string & { readonly __brand: 'TokenHash' }

/** `api`: a permission profile (grants over a mount's `resources`), Thinger.io-style (issue 13). */
export type TokenKind = 'album' | 'user' | 'api'

export interface TokenRecord {
  /** Public id, safe to log and show (`tok_…`). */
  id: string
  kind: TokenKind
  /** The user the token belongs to (album tokens may have one, for audit; user tokens always do). */
  user: string
  /** The album an album token is pinned to; empty for user tokens. */
  album: string
  perms: ReadonlySet<Action>
  /** Milliseconds since the epoch; mandatory. */
  expiresAt: number
  createdAt: number
  enabled: boolean
  /** Milliseconds since the epoch, or 0 when not revoked. */
  revokedAt: number
  description: string
  tenant: string
  /** Free-form JSON attributes, kept opaque. */
  attrs: string
  /** Milliseconds since the epoch of the last use tokengate recorded (batched), or 0. */
  lastUsedAt: number
  /** `api` tokens: their grants; null when the stored field is malformed (every request refused). */
  grants?: readonly Grant[] | null
}

/** The hash field of an api token's grants (a JSON array of grant strings, policy/grants.ts). */
export const GRANTS_FIELD = 'grants'

/** The hash field token/last-used.ts writes; no admin write touches it. */
export const LAST_USED_FIELD = 'lastUsedAt'

const ALL_ACTIONS: readonly Action[] = ['read', 'write', 'download', 'appropriate']

/** Parse a comma-separated permission list; unknown names are an error for the caller to report. */
export function parsePerms(text: string): { perms: Set<Action>; unknown: string[] } {
  const perms = new Set<Action>()
  const unknown: string[] = []
  for (const raw of text.split(',')) {
    const name = raw.trim()
    if (!name) continue
    if ((ALL_ACTIONS as readonly string[]).includes(name)) perms.add(name as Action)
    else unknown.push(name)
  }
  return { perms, unknown }
}

/** Permissions in canonical order, comma-separated. */
export function formatPerms(perms: ReadonlySet<Action>): string {
  return ALL_ACTIONS.filter((a) => perms.has(a)).join(',')
}

/** Record → Redis hash fields (all strings). */
export function toHash(r: TokenRecord): Record<string, string> {
  return {
    id: r.id,
    kind: r.kind,
    user: r.user,
    album: r.album,
    perms: formatPerms(r.perms),
    expiresAt: String(r.expiresAt),
    createdAt: String(r.createdAt),
    enabled: r.enabled ? '1' : '0',
    revokedAt: String(r.revokedAt),
    description: r.description,
    tenant: r.tenant,
    attrs: r.attrs,
    [LAST_USED_FIELD]: String(r.lastUsedAt),
    ...(r.kind === 'api' && r.grants ? { [GRANTS_FIELD]: serializeGrants(r.grants) } : {}),
  }
}

/**
 * Redis hash → record, or null when the hash is empty or not a well-formed record. A malformed
 * record fails closed (treated as unknown) rather than granting anything.
 */
export function fromHash(h: Record<string, string>): TokenRecord | null {
  if (!h.id || (h.kind !== 'album' && h.kind !== 'user' && h.kind !== 'api')) return null
  const expiresAt = Number(h.expiresAt)
  if (!Number.isFinite(expiresAt) || expiresAt <= 0) return null
  if (h.kind === 'album' && !h.album) return null
  if (h.kind === 'user' && !h.user) return null
  const { perms } = parsePerms(h.perms ?? '')
  return {
    id: h.id,
    kind: h.kind,
    user: h.user ?? '',
    album: h.album ?? '',
    perms,
    expiresAt,
    createdAt: Number(h.createdAt) || 0,
    enabled: h.enabled !== '0',
    revokedAt: Number(h.revokedAt) || 0,
    description: h.description ?? '',
    tenant: h.tenant ?? '',
    attrs: h.attrs ?? '',
    lastUsedAt: Number(h[LAST_USED_FIELD]) || 0,
    // Parsed once per lookup (the cache keeps the record), never per request.
    ...(h.kind === 'api' ? { grants: deserializeGrants(h[GRANTS_FIELD]) } : {}),
  }
}

const parsedAttrs = new WeakMap<TokenRecord, Readonly<Record<string, unknown>>>()

/**
 * One attribute of a token (`attrs`, a JSON object of strings), or undefined when it has none or
 * `attrs` is not such an object. Parsed once per record (cached records are shared objects).
 */
export function tokenAttr(r: TokenRecord, name: string): string | undefined {
  let attrs = parsedAttrs.get(r)
  if (!attrs) {
    attrs = parseAttrs(r.attrs)
    parsedAttrs.set(r, attrs)
  }
  const value = Object.hasOwn(attrs, name) ? attrs[name] : undefined
  return typeof value === 'string' ? value : undefined
}

function parseAttrs(text: string): Readonly<Record<string, unknown>> {
  if (!text) return {}
  try {
    const parsed: unknown = JSON.parse(text)
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {}
  } catch {
    return {}
  }
}
