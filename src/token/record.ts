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
  /**
   * Attributes (Q's department, user type…): name → value, stored as JSON in the `attrs` field;
   * forwarded upstream as the headers `identityHeaders.attributes` names, and bound by rules.
   */
  attrs: Readonly<Record<string, string>>
  /** Milliseconds since the epoch of the last use tokengate recorded (batched), or 0. */
  lastUsedAt: number
  /**
   * The token's user, folded in at lookup from the user record (token/redis-store.ts): false once
   * the user is deactivated. True when the user has no record (`users.registry: optional`).
   */
  userActive: boolean
  /** The user's validity end (ms since the epoch), folded in at lookup; 0 when none. */
  userValidUntil: number
  /** The last refusal tokengate recorded of this token (batched, like lastUsedAt); 0 when none. */
  lastRefusedAt?: number
  /** Why it was refused then: revoked, expired, disabled, user_inactive. */
  lastRefusedReason?: string
  /** Who created it (the CLI actor, or the admin API caller and address); absent on older records. */
  createdBy?: string
  /** `api` tokens: their grants; null when the stored field is malformed (every request refused). */
  grants?: readonly Grant[] | null
}

/** The hash field of an api token's grants (a JSON array of grant strings, policy/grants.ts). */
export const GRANTS_FIELD = 'grants'

/** Fields of a user record (`<prefix>user:<id>`) the proxy reads at lookup, in this order. */
export const USER_LOOKUP_FIELDS = ['status', 'validUntil'] as const

/** Fold a user record's `status` and `validUntil` (HMGET replies, null when absent) into a token record. */
export function foldUser(record: TokenRecord, status: string | null, validUntil: string | null): TokenRecord {
  record.userActive = status !== 'deactivated'
  record.userValidUntil = Number(validUntil) || 0
  return record
}

/** Attributes as stored (JSON object of strings); anything else reads as none. */
export function parseAttrs(text: string | undefined): Readonly<Record<string, string>> {
  if (!text) return NO_ATTRS
  try {
    const value: unknown = JSON.parse(text)
    if (!value || typeof value !== 'object' || Array.isArray(value)) return NO_ATTRS
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v
    return out
  } catch {
    return NO_ATTRS
  }
}

/** Attributes → stored form: '' when none, else JSON with sorted keys. */
export function formatAttrs(attrs: Readonly<Record<string, string>>): string {
  const keys = Object.keys(attrs).sort()
  if (keys.length === 0) return ''
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, attrs[k]])))
}

const NO_ATTRS: Readonly<Record<string, string>> = Object.freeze({})

/** The hash field token/last-used.ts writes; no admin write touches it. */
export const LAST_USED_FIELD = 'lastUsedAt'
/** Fields of the last refusal of the token (revoked, expired, disabled…), written batched. */
export const LAST_REFUSED_FIELD = 'lastRefusedAt'
export const LAST_REFUSED_REASON_FIELD = 'lastRefusedReason'

/** The last instant a JavaScript Date can show (ECMA-262 §21.4.1.1). */
export const LAST_DATE = 8.64e15

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

// One Set per distinct permission list, shared by every record that has it (at most 16: the
// canonical spellings only), so records of one kind differ in nothing but their strings.
const SHARED_PERMS = new Map<string, ReadonlySet<Action>>()

/** A stored permission list as a shared, read-only Set (unknown names dropped, as parsePerms does). */
function permsOf(text: string): ReadonlySet<Action> {
  const known = SHARED_PERMS.get(text)
  if (known) return known
  const { perms } = parsePerms(text)
  const canonical = formatPerms(perms)
  const shared = SHARED_PERMS.get(canonical) ?? perms
  SHARED_PERMS.set(canonical, shared)
  return shared
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
    attrs: formatAttrs(r.attrs),
    [LAST_USED_FIELD]: String(r.lastUsedAt),
    ...(r.createdBy ? { createdBy: r.createdBy } : {}),
    ...(r.kind === 'api' && r.grants ? { [GRANTS_FIELD]: serializeGrants(r.grants) } : {}),
  }
}

/**
 * The record fields a lookup reads (token/redis-store.ts), in this order: what the gate decides
 * with. The others (createdAt, description, lastUsedAt, createdBy, the last refusal) are for the
 * operator's views, which read the whole hash; a lookup leaves them at their empty values.
 */
export const LOOKUP_FIELDS = [
  'id',
  'kind',
  'user',
  'album',
  'perms',
  'expiresAt',
  'enabled',
  'revokedAt',
  'tenant',
  'attrs',
  GRANTS_FIELD,
] as const

/** HMGET's answer for LOOKUP_FIELDS (null for a missing field) → record, as fromHash reads it. */
export function fromLookup(values: readonly (string | null)[]): TokenRecord | null {
  const h: Record<string, string> = {}
  for (let i = 0; i < LOOKUP_FIELDS.length; i++) h[LOOKUP_FIELDS[i] as string] = values[i] ?? ''
  return fromHash(h)
}

/**
 * Redis hash → record, or null when the hash is empty or not a well-formed record. A malformed
 * record fails closed (treated as unknown) rather than granting anything. Every record has every
 * property (absent ones undefined), so the hot path that reads them sees one object shape.
 */
export function fromHash(h: Readonly<Record<string, string>>): TokenRecord | null {
  if (!h.id || (h.kind !== 'album' && h.kind !== 'user' && h.kind !== 'api')) return null
  const expiresAt = Number(h.expiresAt)
  // Past the last date a Date can hold (8.64e15 ms) no expiry is meant: fail closed.
  if (!Number.isFinite(expiresAt) || expiresAt <= 0 || expiresAt > LAST_DATE) return null
  if (h.kind === 'album' && !h.album) return null
  if (h.kind === 'user' && !h.user) return null
  const refusedAt = Number(h[LAST_REFUSED_FIELD]) || 0
  return {
    id: h.id,
    kind: h.kind,
    user: h.user ?? '',
    album: h.album ?? '',
    perms: permsOf(h.perms ?? ''),
    expiresAt,
    createdAt: Number(h.createdAt) || 0,
    enabled: h.enabled !== '0',
    revokedAt: Number(h.revokedAt) || 0,
    description: h.description ?? '',
    tenant: h.tenant ?? '',
    attrs: parseAttrs(h.attrs),
    lastUsedAt: Number(h[LAST_USED_FIELD]) || 0,
    userActive: true,
    userValidUntil: 0,
    createdBy: h.createdBy || undefined,
    lastRefusedAt: refusedAt > 0 ? refusedAt : undefined,
    lastRefusedReason: refusedAt > 0 ? (h[LAST_REFUSED_REASON_FIELD] ?? '') : undefined,
    // Parsed once per lookup (the cache keeps the record), never per request.
    grants: h.kind === 'api' ? deserializeGrants(h[GRANTS_FIELD]) : undefined,
  }
}

/** One attribute of a token, or undefined when it has none (attributes are parsed once, at lookup). */
export function tokenAttr(r: TokenRecord, name: string): string | undefined {
  return Object.hasOwn(r.attrs, name) ? r.attrs[name] : undefined
}
