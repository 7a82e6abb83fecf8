// Admin presentation of tokens: what administrators see of a record (no hash, no secret), shared
// by the CLI's tables and the admin API's JSON.
import type { Action } from '../route/match.js'
import type { TokenRecord } from '../token/record.js'
import { formatGrants } from './grant-input.js'

export const PERMISSIONS: readonly Action[] = ['read', 'write', 'download', 'appropriate']

/** What create returns: the only time the secret is shown. */
export interface CreatedToken {
  id: string
  /** The secret. Shown once; tokengate keeps only its sha256. */
  token: string
  kind: TokenRecord['kind']
  user: string
  album: string
  perms: Action[]
  expiresAt: string
  createdAt: string
  description: string
  tenant: string
  /** Attributes: the user's, with the token's own over them. */
  attrs: Record<string, string>
  /** api tokens only: their grants, canonical text. */
  grants?: string[]
}

export type TokenStatus = 'active' | 'expired' | 'revoked' | 'disabled'

/** A token as administrators see it: no hash, no secret. Dates are ISO 8601. */
export interface TokenInfo {
  id: string
  kind: TokenRecord['kind']
  user: string
  album: string
  perms: Action[]
  expiresAt: string
  createdAt: string
  /** Who created it (CLI actor, or admin API caller); null on records older than this field. */
  createdBy: string | null
  enabled: boolean
  revokedAt: string | null
  /** When a request last used it, as recorded every tokens.lastUsedInterval; null when never. */
  lastUsedAt: string | null
  /** When a request with this token was last refused for its state, and why; null when never. */
  lastRefusedAt: string | null
  lastRefusedReason: string | null
  description: string
  tenant: string
  attrs: Record<string, string>
  status: TokenStatus
  /** api tokens only: their grants, canonical text; null when the stored field cannot be read. */
  grants?: string[] | null
}

/** Why a record would be refused now, in the order policy/decide.ts checks; `active` when it would not. */
export function statusOf(r: TokenRecord, now: number): TokenStatus {
  if (r.revokedAt > 0) return 'revoked'
  if (!r.enabled) return 'disabled'
  return r.expiresAt <= now ? 'expired' : 'active'
}

/** The administrator's view of a record: no hash, no secret. */
export function toInfo(r: TokenRecord, now: number): TokenInfo {
  return {
    id: r.id,
    kind: r.kind,
    user: r.user,
    album: r.album,
    perms: PERMISSIONS.filter((p) => r.perms.has(p)),
    expiresAt: new Date(r.expiresAt).toISOString(),
    createdAt: new Date(r.createdAt).toISOString(),
    createdBy: r.createdBy ?? null,
    enabled: r.enabled,
    revokedAt: r.revokedAt > 0 ? new Date(r.revokedAt).toISOString() : null,
    lastUsedAt: r.lastUsedAt > 0 ? new Date(r.lastUsedAt).toISOString() : null,
    lastRefusedAt: r.lastRefusedAt ? new Date(r.lastRefusedAt).toISOString() : null,
    lastRefusedReason: r.lastRefusedAt ? (r.lastRefusedReason ?? null) : null,
    description: r.description,
    tenant: r.tenant,
    attrs: { ...r.attrs },
    status: statusOf(r, now),
    ...(r.kind === 'api' ? { grants: r.grants ? formatGrants(r.grants) : null } : {}),
  }
}
