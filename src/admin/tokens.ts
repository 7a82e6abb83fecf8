// Token administration (DESIGN §1, §3): create, list, show, revoke, disable and enable tokens, and
// manage album membership. The CLI (admin/cli.ts) and the admin HTTP API both call this class, so
// input checks, the Redis layout and the invalidation messages live in one place. Operations return
// plain data; the only secret that ever leaves this module is create's return value (only its
// sha256 is stored). Input problems throw AdminInputError with a message saying what to change.
import { randomBytes } from 'node:crypto'
import { parseDuration, parseIsoDate } from '../config/duration.js'
import { hashSecret, mintSecret } from '../credential/secret.js'
import type { Action } from '../route/match.js'
import { publishInvalidation } from '../token/invalidation.js'
import type { EvictKey, Keys } from '../token/keys.js'
import { fromHash, parsePerms, type TokenHash, type TokenRecord, toHash } from '../token/record.js'
import type { RedisClient } from '../token/redis-client.js'
import { type Actor, type AuditFacts, type AuditOptions, AuditTrail, osUser } from './audit.js'
import { formatGrants, mergeGrants, parseGrantInput } from './grant-input.js'
import { AdminInputError, AdminNotFound } from './input-error.js'
import { isRefreshId, type RefreshInfo, RefreshTokens } from './refresh.js'

export { AdminInputError, AdminNotFound }

export const PERMISSIONS: readonly Action[] = ['read', 'write', 'download', 'appropriate']

export interface CreateInput {
  kind: TokenRecord['kind']
  user?: string
  album?: string
  /** `read,write` or `['read', 'write']`; album tokens only (user tokens get every permission). */
  perms?: string | string[]
  /** Milliseconds since the epoch, or an ISO 8601 date (`2027-01-31`, `2027-01-31T12:00:00Z`). */
  expiresAt?: number | string
  /** A duration from now, e.g. `30d`, `12h` (a unit is required). */
  expiresIn?: string
  description?: string
  tenant?: string
  /** api tokens: grants as `type:id:action[,action…]` or `admin` (policy/grants.ts), at least one. */
  grants?: string | string[]
}

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
  enabled: boolean
  revokedAt: string | null
  /** When a request last used it, as recorded every tokens.lastUsedInterval; null when never. */
  lastUsedAt: string | null
  description: string
  tenant: string
  status: TokenStatus
  /** api tokens only: their grants, canonical text; null when the stored field cannot be read. */
  grants?: string[] | null
}

export interface TokenAdminOptions {
  /** Prefix of minted secrets (`tokens.prefix`). */
  secretPrefix: string
  /** `tokens.checksumKey`: minted secrets carry a keyed checksum (credential/secret.ts). */
  checksumKey?: string | undefined
  /** Milliseconds Redis keeps a record after its expiry (`tokens.expiredGrace`). */
  expiredGrace: number
  /** Clock, injectable for tests. */
  now?: () => number
  /** Who the audit trail records as making the changes (default: the OS user). */
  actor?: Actor
  /** Audit stream settings (`audit.maxLen`) and a hook called after each recorded change. */
  audit?: AuditOptions
}

/** The fields of a new record, checked; what create stores besides id and createdAt. */
export type ValidCreate = Pick<
  TokenRecord,
  'kind' | 'user' | 'album' | 'perms' | 'expiresAt' | 'description' | 'tenant' | 'grants'
>

const MAX_NAME = 256
const MAX_DESCRIPTION = 1024
// ':' is refused because `user:<id>` / `album:<id>` are the invalidation wire form (DESIGN §3).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const BAD_NAME_CHAR = /[\s\u0000-\u001f\u007f-\u009f:]/
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/**
 * Check a user, album, tenant or token id: non-empty, at most 256 characters, no whitespace,
 * control characters or ':'. `what` names it in the message (e.g. `--album`).
 */
export function checkName(value: unknown, what: string, field: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new AdminInputError(`${what} must not be empty`, field)
  if (value.length > MAX_NAME) {
    throw new AdminInputError(
      `${what} is ${value.length} characters long; at most ${MAX_NAME} are allowed`,
      field,
    )
  }
  const bad = BAD_NAME_CHAR.exec(value)
  if (bad) {
    const shown =
      bad[0] === ':' ? "':'" : `character U+${bad[0].codePointAt(0)?.toString(16).padStart(4, '0')}`
    throw new AdminInputError(
      `${what} "${value.replace(CONTROL, '?')}" contains ${shown}; use no whitespace, control characters or ':'`,
      field,
    )
  }
  return value
}

/** Expiry in milliseconds since the epoch from `expiresAt` or `expiresIn`; mandatory and in the future. */
export function resolveExpiry(input: Pick<CreateInput, 'expiresAt' | 'expiresIn'>, now: number): number {
  const hint = 'give --expires as a duration like 30d or 12h, or an ISO date like 2027-01-31'
  if (input.expiresAt !== undefined && input.expiresIn !== undefined) {
    throw new AdminInputError('give either an expiry date or a duration, not both', 'expires')
  }
  let at: number
  if (input.expiresIn !== undefined) {
    const text = String(input.expiresIn).trim()
    const ms = /^\d+(\.\d+)?$/.test(text) ? undefined : parseDuration(text)
    if (ms === undefined)
      throw new AdminInputError(`"${input.expiresIn}" is not a duration; ${hint}`, 'expires')
    if (ms <= 0) throw new AdminInputError(`the duration "${input.expiresIn}" is zero; ${hint}`, 'expires')
    at = now + ms
  } else if (typeof input.expiresAt === 'number') {
    if (!Number.isSafeInteger(input.expiresAt)) {
      throw new AdminInputError(
        `expiresAt must be whole milliseconds since the epoch, got ${input.expiresAt}`,
        'expires',
      )
    }
    at = input.expiresAt
  } else if (typeof input.expiresAt === 'string') {
    const parsed = parseIsoDate(input.expiresAt)
    if (parsed === undefined)
      throw new AdminInputError(`"${input.expiresAt}" is not a date; ${hint}`, 'expires')
    at = parsed
  } else {
    throw new AdminInputError(`an expiry is mandatory; ${hint}`, 'expires')
  }
  if (at <= now) {
    throw new AdminInputError(
      `the expiry ${new Date(at).toISOString()} is not in the future; ${hint}`,
      'expires',
    )
  }
  return at
}

/** Every check create makes, with no I/O: the record fields to store, or AdminInputError. */
export function validateCreate(input: CreateInput, now: number): ValidCreate {
  const kind = input.kind as string
  if (kind === undefined) throw new AdminInputError('--kind is required: album, user or api', 'kind')
  if (kind !== 'album' && kind !== 'user' && kind !== 'api') {
    throw new AdminInputError(`--kind must be "album", "user" or "api", got "${String(kind)}"`, 'kind')
  }
  const user = input.user === undefined ? '' : checkName(input.user, '--user', 'user')
  const album = input.album === undefined ? '' : checkName(input.album, '--album', 'album')
  const tenant = input.tenant === undefined ? '' : checkName(input.tenant, '--tenant', 'tenant')
  const permText = Array.isArray(input.perms) ? input.perms.join(',') : (input.perms ?? '')
  const { perms, unknown } = parsePerms(permText)
  const description = input.description === undefined ? '' : checkDescription(input.description)

  if (kind === 'api') {
    if (album) throw new AdminInputError('api tokens reach resources, not an album: drop --album', 'album')
    if (permText.trim())
      throw new AdminInputError('api tokens carry grants, not --perms: use --grant', 'perms')
    const grants = mergeGrants([], parseGrantInput(input.grants, 'grants'))
    if (grants.length === 0) {
      throw new AdminInputError(
        'api tokens need at least one grant: add --grant TYPE:ID:ACTION[,ACTION…] (ID or ACTION may be *) or --grant admin',
        'grants',
      )
    }
    const expiresAt = resolveExpiry(input, now)
    return { kind, user, album, perms: new Set<Action>(), expiresAt, description, tenant, grants }
  }
  if (input.grants !== undefined) {
    throw new AdminInputError('only api tokens carry grants: drop --grant, or use --kind api', 'grants')
  }
  if (kind === 'user') {
    if (!user) throw new AdminInputError('user tokens need a user: add --user ID', 'user')
    if (album) {
      throw new AdminInputError(
        'user tokens are not pinned to an album: drop --album (grant albums with `tokengate album add-member`)',
        'album',
      )
    }
    if (permText.trim()) {
      throw new AdminInputError(
        'user tokens get every permission over what their user may reach: drop --perms',
        'perms',
      )
    }
  } else {
    if (!album) throw new AdminInputError('album tokens need an album: add --album ID', 'album')
    if (unknown.length) {
      throw new AdminInputError(
        `unknown permission${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} in --perms; choose from ${PERMISSIONS.join(', ')}`,
        'perms',
      )
    }
    if (perms.size === 0) {
      throw new AdminInputError(
        `album tokens need at least one permission: add --perms with some of ${PERMISSIONS.join(',')}`,
        'perms',
      )
    }
  }
  return {
    kind,
    user,
    album,
    // Canonical order, as stored (formatPerms), whatever order they were given in.
    perms: new Set(kind === 'user' ? PERMISSIONS : PERMISSIONS.filter((p) => perms.has(p))),
    expiresAt: resolveExpiry(input, now),
    description,
    tenant,
  }
}

/** Check a description (create, update): at most 1024 characters, no control characters. */
export function checkDescription(value: unknown): string {
  const description = String(value)
  if (description.length > MAX_DESCRIPTION) {
    throw new AdminInputError(
      `--description is longer than ${MAX_DESCRIPTION} characters; shorten it`,
      'description',
    )
  }
  if (CONTROL.test(description)) {
    throw new AdminInputError(
      '--description contains control characters (newlines, tabs…); remove them',
      'description',
    )
  }
  return description
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
    enabled: r.enabled,
    revokedAt: r.revokedAt > 0 ? new Date(r.revokedAt).toISOString() : null,
    lastUsedAt: r.lastUsedAt > 0 ? new Date(r.lastUsedAt).toISOString() : null,
    description: r.description,
    tenant: r.tenant,
    status: statusOf(r, now),
    ...(r.kind === 'api' ? { grants: r.grants ? formatGrants(r.grants) : null } : {}),
  }
}

/** A new public id: `tok_` + 16 URL-safe characters (96 random bits). */
export function newTokenId(): string {
  return `tok_${randomBytes(12).toString('base64url')}`
}

// HSET only if the record still exists: a record that expired out of Redis between our read and
// this write must not come back as a partial hash without an expiry.
const HSET_IF_EXISTS = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`

const SCAN_COUNT = 500

/**
 * The token operations over one Redis connection (the CLI's, or the admin API's). Every change is
 * recorded in the audit trail (admin/audit.ts) after it is made, as `opts.actor`.
 */
export class TokenAdmin {
  private readonly now: () => number
  private readonly actor: Actor
  /** The audit trail these operations write to (list it with `audit.list`). */
  readonly audit: AuditTrail
  /** Refresh tokens (admin/refresh.ts), minting their access tokens through this. */
  readonly refresh: RefreshTokens

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly opts: TokenAdminOptions,
  ) {
    this.now = opts.now ?? Date.now
    this.actor = opts.actor ?? { name: osUser() }
    this.audit = new AuditTrail(redis, keys, opts.audit)
    this.refresh = new RefreshTokens(redis, keys, this, { ...opts, now: this.now, actor: this.actor })
  }

  /** The same operations, recorded as made by `actor` (the admin API: one per request). */
  withActor(actor: Actor): TokenAdmin {
    return new TokenAdmin(this.redis, this.keys, { ...this.opts, actor })
  }

  /** Mint a token and store its record (hash only). Returns the secret: show it once. */
  async create(input: CreateInput): Promise<CreatedToken> {
    const now = this.now()
    const valid = validateCreate(input, now)
    const id = newTokenId()
    const token = mintSecret(this.opts.secretPrefix, this.opts.checksumKey)
    const hash = hashSecret(token)
    const record: TokenRecord = {
      id,
      ...valid,
      createdAt: now,
      enabled: true,
      revokedAt: 0,
      attrs: '',
      lastUsedAt: 0,
    }
    const expireAt = record.expiresAt + this.opts.expiredGrace
    // Single-key commands only, so this works on Redis Cluster (a token's keys live in different
    // slots). The order makes a crash half way harmless: first the id key and the index entries
    // (`list` prunes ids whose record never came), then the record. Each key gets its value and
    // its expiry in one single-key MULTI, so none outlives the expiry, and nothing is usable
    // before the record is whole.
    const indexed = [this.redis.sadd(this.keys.allTokens(), id)]
    if (record.user) indexed.push(this.redis.sadd(this.keys.userTokens(record.user), id))
    if (record.kind === 'album') indexed.push(this.redis.sadd(this.keys.albumTokens(record.album), id))
    await Promise.all([
      exec(this.redis.multi().set(this.keys.id(id), hash).pexpireat(this.keys.id(id), expireAt)),
      ...indexed,
    ])
    await exec(
      this.redis
        .multi()
        .hset(this.keys.token(hash), toHash(record))
        .pexpireat(this.keys.token(hash), expireAt),
    )
    const info = toInfo(record, now)
    await this.record({
      op: 'token.create',
      tokenId: id,
      kind: info.kind,
      user: info.user,
      album: info.album,
      perms: info.perms,
      expiresAt: info.expiresAt,
      ...(info.grants ? { grants: info.grants.join(' ') } : {}),
    })
    return {
      id,
      token,
      kind: info.kind,
      user: info.user,
      album: info.album,
      perms: info.perms,
      expiresAt: info.expiresAt,
      createdAt: info.createdAt,
      description: info.description,
      tenant: info.tenant,
      ...(info.grants ? { grants: info.grants } : {}),
    }
  }

  /**
   * Tokens still in Redis (expired ones stay for `tokens.expiredGrace`), oldest first, filtered by
   * user and/or album. Ids whose record has left Redis are removed from the sets read.
   */
  async list(filter: { user?: string; album?: string } = {}): Promise<TokenInfo[]> {
    const user = filter.user === undefined ? undefined : checkName(filter.user, '--user', 'user')
    const album = filter.album === undefined ? undefined : checkName(filter.album, '--album', 'album')
    // With both filters, read the user's set and filter by album (no SINTER over a big album set).
    const set =
      user !== undefined
        ? this.keys.userTokens(user)
        : album !== undefined
          ? this.keys.albumTokens(album)
          : this.keys.allTokens()
    const ids = await this.members(set)
    const now = this.now()
    const out: TokenInfo[] = []
    const stale: string[] = []
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      const batch = ids.slice(i, i + SCAN_COUNT)
      const found = await this.loadMany(batch)
      batch.forEach((id, j) => {
        const r = found[j]
        if (!r) stale.push(id)
        else if (album === undefined || r.record.album === album) out.push(toInfo(r.record, now))
      })
    }
    if (stale.length) {
      // One SREM per set (they may live on different cluster nodes); each is complete on its own.
      const pruned = [this.redis.srem(this.keys.allTokens(), ...stale)]
      if (set !== this.keys.allTokens()) pruned.push(this.redis.srem(set, ...stale))
      await Promise.all(pruned)
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
  }

  /** One token by public id, or null when there is none. */
  async show(id: string): Promise<TokenInfo | null> {
    const found = await this.load(checkName(id, 'the token id', 'id'))
    return found ? toInfo(found.record, this.now()) : null
  }

  /** Revoke a token: permanent, and every replica refuses it on its next request. */
  async revoke(id: string): Promise<TokenInfo | RefreshInfo> {
    if (isRefreshId(id)) return this.refresh.revoke(id)
    const { hash, record } = await this.mustLoad(id)
    const changed = record.revokedAt === 0
    if (changed) {
      record.revokedAt = this.now()
      if (!(await this.update(hash, { revokedAt: String(record.revokedAt) }))) throw notFound(record.id)
    }
    // Published even when already revoked: harmless, and it repairs a replica that missed it.
    await this.publish({ kind: 'token', hash })
    await this.recordTokenChange('token.revoke', record, changed)
    return toInfo(record, this.now())
  }

  /** Revoke every token of a user (album tokens created for them included). Returns how many were revoked now. */
  async revokeUser(user: string): Promise<number> {
    checkName(user, '--user', 'user')
    const ids = await this.members(this.keys.userTokens(user))
    let count = 0
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      const found = await this.loadMany(ids.slice(i, i + SCAN_COUNT))
      for (const f of found) {
        if (!f || f.record.revokedAt > 0) continue
        f.record.revokedAt = this.now()
        if (await this.update(f.hash, { revokedAt: String(f.record.revokedAt) })) {
          count++
          await this.publish({ kind: 'token', hash: f.hash })
        }
      }
    }
    count += await this.refresh.revokeUser(user)
    await this.publish({ kind: 'user', user })
    await this.record({ op: 'token.revoke-user', user, count })
    return count
  }

  /** Disable a token until enabled again. */
  async disable(id: string): Promise<TokenInfo> {
    return this.setEnabled(id, false)
  }

  /** Enable a disabled token. A revoked token cannot be enabled. */
  async enable(id: string): Promise<TokenInfo> {
    return this.setEnabled(id, true)
  }

  /** Make `user` a member of `album` (user tokens may then ask for `?album=`). Returns whether it changed. */
  async addMember(album: string, user: string): Promise<{ changed: boolean }> {
    checkName(album, 'the album', 'album')
    checkName(user, 'the user', 'user')
    const added = await this.redis.sadd(this.keys.userAlbums(user), album)
    if (added > 0) await this.publish({ kind: 'user', user })
    await this.record({ op: 'album.add-member', album, user, changed: added > 0 })
    return { changed: added > 0 }
  }

  /** Remove `user` from `album`. Returns whether it changed. */
  async removeMember(album: string, user: string): Promise<{ changed: boolean }> {
    checkName(album, 'the album', 'album')
    checkName(user, 'the user', 'user')
    const removed = await this.redis.srem(this.keys.userAlbums(user), album)
    if (removed > 0) await this.publish({ kind: 'user', user })
    await this.record({ op: 'album.remove-member', album, user, changed: removed > 0 })
    return { changed: removed > 0 }
  }

  private async setEnabled(id: string, enabled: boolean): Promise<TokenInfo> {
    const { hash, record } = await this.mustLoad(id)
    if (enabled && record.revokedAt > 0) {
      throw new AdminInputError(
        `token ${record.id} was revoked at ${new Date(record.revokedAt).toISOString()}; revocation is permanent, create a new token instead`,
        'id',
      )
    }
    const changed = record.enabled !== enabled
    if (changed) {
      record.enabled = enabled
      if (!(await this.update(hash, { enabled: toHash(record).enabled as string }))) throw notFound(record.id)
    }
    await this.publish({ kind: 'token', hash })
    await this.recordTokenChange(enabled ? 'token.enable' : 'token.disable', record, changed)
    return toInfo(record, this.now())
  }

  // The audit entry is written after the change: a change whose entry failed is reported as an error.
  private async record(facts: AuditFacts): Promise<void> {
    await this.audit.record(this.actor, facts)
  }

  private recordTokenChange(op: AuditFacts['op'], r: TokenRecord, changed: boolean): Promise<void> {
    return this.record({ op, tokenId: r.id, user: r.user, album: r.album, changed })
  }

  /** Write fields of an existing record; false (and nothing written) when it left Redis meanwhile. */
  private async update(hash: TokenHash, fields: Record<string, string>): Promise<boolean> {
    const done = await this.redis.eval(
      HSET_IF_EXISTS,
      1,
      this.keys.token(hash),
      ...Object.entries(fields).flat(),
    )
    return done !== 0
  }

  // Replicas evict their caches on this channel (token/invalidation.ts subscribes).
  private async publish(key: EvictKey): Promise<void> {
    await publishInvalidation(this.redis, this.keys, key)
  }

  private async members(set: string): Promise<string[]> {
    const ids = new Set<string>()
    let cursor = '0'
    do {
      const [next, batch] = await this.redis.sscan(set, cursor, 'COUNT', SCAN_COUNT)
      for (const id of batch) ids.add(id)
      cursor = next
    } while (cursor !== '0')
    return [...ids]
  }

  private async load(id: string): Promise<{ hash: TokenHash; record: TokenRecord } | null> {
    return (await this.loadMany([id]))[0] ?? null
  }

  private async mustLoad(id: string): Promise<{ hash: TokenHash; record: TokenRecord }> {
    const found = await this.load(checkName(id, 'the token id', 'id'))
    if (!found) throw notFound(id)
    return found
  }

  /**
   * Records by id, two round trips for the whole batch; null where an id has no record left. One
   * GET per id rather than an MGET, whose keys would span cluster slots; ioredis sends each command
   * without waiting for the previous reply, so a single node still answers a batch in one trip.
   */
  private async loadMany(ids: string[]): Promise<({ hash: TokenHash; record: TokenRecord } | null)[]> {
    const hashes = (await Promise.all(
      ids.map((id) => this.redis.get(this.keys.id(id))),
    )) as (TokenHash | null)[]
    const fields = await Promise.all(hashes.map((h) => (h ? this.redis.hgetall(this.keys.token(h)) : null)))
    return hashes.map((hash, i) => {
      if (!hash) return null
      const record = fromHash(fields[i] as Record<string, string>)
      // The id key must point at a record that carries the same id.
      return record && record.id === ids[i] ? { hash, record } : null
    })
  }
}

export function notFound(id: string): AdminNotFound {
  return new AdminNotFound(
    `no token with id "${id}" (check the id with \`tokengate token list\`; expired tokens leave Redis after tokens.expiredGrace)`,
    'id',
  )
}

/** Run a MULTI or pipeline and return its replies, throwing the first command error. */
async function exec(p: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<unknown[]> {
  const results = (await p.exec()) ?? []
  return results.map(([err, value]) => {
    if (err) throw err
    return value
  })
}
