// The audit trail (DESIGN §6, Operations): every administrative change (token create, revoke,
// disable, enable, album membership) as one entry of a capped Redis stream, `<prefix>audit`,
// written with `XADD … MAXLEN ~ audit.maxLen`. TokenAdmin records; `tokengate audit` and the admin
// API's `GET /audit` list. An entry says who (the actor, and the API client's address), what (the
// operation, token id, user, album; never a secret nor a token hash: callers pass ids and names
// only) and when (the stream id's time: Redis's clock, so entries from every replica and CLI share
// one order). One key and one command per call, so it works unchanged on Redis Cluster.
import { userInfo } from 'node:os'
import type { Cluster, Redis } from 'ioredis'
import { parseDuration, parseIsoDate } from '../config/duration.js'
import type { Keys } from '../token/keys.js'
import type { TokenKind } from '../token/record.js'
import { AdminInputError } from './input-error.js'

/** What was done; `tokengate audit` and `GET /audit` show it as is. */
export type AuditOp =
  | 'token.create'
  | 'token.revoke'
  | 'token.revoke-user'
  | 'token.disable'
  | 'token.enable'
  | 'token.update'
  | 'album.add-member'
  | 'album.remove-member'
  | 'album.add-studies'
  | 'album.remove-studies'
  | 'inbox.add-studies'
  | 'inbox.remove-studies'
  | 'refresh.create'
  | 'refresh.rotate'
  | 'refresh.reuse'
  | 'refresh.revoke'

/** Who made a change. */
export interface Actor {
  /** CLI: the OS user, or `--actor` / `$TOKENGATE_ACTOR`. Admin API: `admin-api`. */
  name: string
  /** Admin API: the client's address. */
  client?: string
}

/** What changed: ids and names only, never a secret nor a hash. Empty values are not stored. */
export interface AuditFacts {
  op: AuditOp
  tokenId?: string
  user?: string
  album?: string
  kind?: TokenKind
  perms?: readonly string[]
  /** api tokens (create, update): the grants after the change, space-separated canonical text. */
  grants?: string
  /** token.update: the enabled flag after the change, when it was given. */
  enabled?: boolean
  /** ISO 8601 (create). */
  expiresAt?: string
  /** False when there was nothing to do (already revoked, already a member…). */
  changed?: boolean
  /** refresh.*: the refresh token family (its public id, `rtk_…`). */
  refreshId?: string
  /** refresh.*: the OAuth client the refresh token is bound to. */
  clientId?: string
  /** token.revoke-user: how many tokens were revoked by it; study changes: how many UIDs changed. */
  count?: number
}

/** One entry as listed: oldest first, `at` in ISO 8601. */
export interface AuditEvent {
  /** The stream entry id (`<ms>-<seq>`): unique, and ordered as the changes were made. */
  id: string
  at: string
  actor: string
  client?: string
  op: string
  tokenId?: string
  user?: string
  album?: string
  kind?: string
  perms?: string[]
  expiresAt?: string
  changed?: boolean
  count?: number
  /** Fields a newer tokengate may add are listed as they were stored. */
  [field: string]: string | string[] | number | boolean | undefined
}

export interface AuditOptions {
  /** About how many entries the stream keeps (`audit.maxLen`; `~`: Redis trims whole nodes). */
  maxLen?: number
  /** Called after each entry is stored (the admin API writes it as a log line). */
  onRecord?: (event: AuditEvent) => void
}

export interface AuditQuery {
  /** Only entries at or after this time (ms since the epoch). */
  since?: number
  /** The most recent `limit` entries (of those since `since`). */
  limit?: number
}

export const DEFAULT_MAX_LEN = 100_000
export const DEFAULT_LIMIT = 100
export const MAX_LIMIT = 10_000
const MAX_ACTOR = 256
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** The audit stream of one Redis (the CLI's connection, or the server's). */
export class AuditTrail {
  private readonly maxLen: number
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: Keys,
    private readonly opts: AuditOptions = {},
  ) {
    this.maxLen = opts.maxLen ?? DEFAULT_MAX_LEN
  }

  /** Store one entry. Called after the change is made; a Redis failure here is thrown, not hidden. */
  async record(actor: Actor, facts: AuditFacts): Promise<AuditEvent> {
    const fields = encodeFields(actor, facts)
    const id = await this.redis.xadd(this.keys.audit(), 'MAXLEN', '~', String(this.maxLen), '*', ...fields)
    const event = decodeEntry(id as string, fields)
    this.opts.onRecord?.(event)
    return event
  }

  /** The most recent `limit` entries since `since`, oldest first. */
  async list(query: AuditQuery = {}): Promise<AuditEvent[]> {
    const start = query.since === undefined ? '-' : String(Math.max(0, Math.floor(query.since)))
    const entries = await this.redis.xrevrange(
      this.keys.audit(),
      '+',
      start,
      'COUNT',
      query.limit ?? DEFAULT_LIMIT,
    )
    return entries.reverse().map(([id, fields]) => decodeEntry(id, fields))
  }
}

/** The stream entry's field/value list: actor first, then the facts that have a value. */
export function encodeFields(actor: Actor, facts: AuditFacts): string[] {
  const out = ['actor', actor.name]
  if (actor.client) out.push('client', actor.client)
  for (const [field, value] of Object.entries(facts)) {
    if (value === undefined || value === '') continue
    out.push(field, Array.isArray(value) ? value.join(',') : String(value))
  }
  return out
}

/** A stored entry back as an event; `at` is the time in its id. */
export function decodeEntry(id: string, fields: readonly string[]): AuditEvent {
  const ms = Number(id.split('-')[0])
  const event: AuditEvent = { id, at: new Date(ms).toISOString(), actor: '', op: '' }
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const field = fields[i] as string
    const value = fields[i + 1] as string
    if (field === 'perms') event.perms = value ? value.split(',') : []
    else if (field === 'changed') event.changed = value === 'true'
    else if (field === 'count') event.count = Number(value)
    else if (field !== 'id' && field !== 'at') event[field] = value
  }
  return event
}

/**
 * `since` and `limit` as the CLI and the API take them: since is a duration back from `now`
 * (`1h`, `7d`) or an ISO date; limit a whole number from 1 to 10000 (default 100).
 */
export function auditQuery(input: { since?: string; limit?: string | number }, now: number): AuditQuery {
  const query: AuditQuery = { limit: DEFAULT_LIMIT }
  if (input.since !== undefined) {
    const text = input.since.trim()
    // A bare number is refused: seconds or milliseconds would be a guess.
    const back = /^\d+(\.\d+)?$/.test(text) ? undefined : parseDuration(text)
    const since = back === undefined ? parseIsoDate(text) : now - back
    if (since === undefined) {
      throw new AdminInputError(
        `since "${input.since}" is neither a duration like 1h or 7d nor an ISO date like 2027-01-31`,
        'since',
      )
    }
    query.since = since
  }
  if (input.limit !== undefined) {
    const text = String(input.limit).trim()
    const limit = /^\d+$/.test(text) ? Number(text) : Number.NaN
    if (!(limit >= 1 && limit <= MAX_LIMIT)) {
      throw new AdminInputError(
        `limit must be a whole number from 1 to ${MAX_LIMIT}, got "${input.limit}"`,
        'limit',
      )
    }
    query.limit = limit
  }
  return query
}

/** Check an actor name (`--actor`, `$TOKENGATE_ACTOR`): 1–256 characters, no control characters. */
export function checkActor(name: string): string {
  if (name.trim().length === 0) throw new AdminInputError('the actor must not be empty', 'actor')
  if (name.length > MAX_ACTOR)
    throw new AdminInputError(`the actor is longer than ${MAX_ACTOR} characters`, 'actor')
  if (CONTROL.test(name)) throw new AdminInputError('the actor contains control characters', 'actor')
  return name
}

/** The OS user running this process (the CLI's default actor). */
export function osUser(): string {
  try {
    return userInfo().username
  } catch {
    // No passwd entry (some containers): fall back to the environment.
    return process.env.USER || process.env.LOGNAME || `uid:${process.getuid?.() ?? 'unknown'}`
  }
}
