// Token administration (DESIGN §1, §3): create, list, show, revoke, disable and enable tokens, and
// manage album membership. The CLI (admin/cli.ts) and the admin HTTP API both call this class, so
// input checks, the Redis layout and the invalidation messages live in one place. Operations return
// plain data; the only secret that ever leaves this module is create's return value (only its
// sha256 is stored). Input problems throw AdminInputError with a message saying what to change.
import { randomBytes } from 'node:crypto'
import { Cluster } from 'ioredis'
import { parseDuration, parseIsoDate } from '../config/duration.js'
import { hashSecret, mintSecret } from '../credential/secret.js'
import type { Action } from '../route/match.js'
import { ID_PATTERN, ID_RULE_TEXT, TOKEN_ID_PATTERN, TOKEN_ID_RULE_TEXT } from '../token/ids.js'
import { publishInvalidation } from '../token/invalidation.js'
import type { EvictKey, Keys } from '../token/keys.js'
import { fromHash, LAST_DATE, parsePerms, type TokenHash, type TokenRecord, toHash } from '../token/record.js'
import type { RedisClient } from '../token/redis-client.js'
import { type Actor, type AuditFacts, type AuditOptions, AuditTrail, osUser } from './audit.js'
import { AdminInputError, AdminNotFound } from './input-error.js'

export { AdminInputError, AdminNotFound }

export const PERMISSIONS: readonly Action[] = ['read', 'write', 'download', 'appropriate']

export interface CreateInput {
  kind: 'album' | 'user'
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
}

/** What create returns: the only time the secret is shown. */
export interface CreatedToken {
  id: string
  /** The secret. Shown once; tokengate keeps only its sha256. */
  token: string
  kind: 'album' | 'user'
  user: string
  album: string
  perms: Action[]
  expiresAt: string
  createdAt: string
  description: string
  tenant: string
}

export type TokenStatus = 'active' | 'expired' | 'revoked' | 'disabled'

/** A token as administrators see it: no hash, no secret. Dates are ISO 8601. */
export interface TokenInfo {
  id: string
  kind: 'album' | 'user'
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
}

export interface TokenAdminOptions {
  /** Prefix of minted secrets (`tokens.prefix`). */
  secretPrefix: string
  /** Milliseconds Redis keeps a record after its expiry (`tokens.expiredGrace`). */
  expiredGrace: number
  /** Longest token lifetime in ms (`tokens.maxLifetime`; default 365 days). */
  maxLifetime?: number
  /** Clock, injectable for tests. */
  now?: () => number
  /** Who the audit trail records as making the changes (default: the OS user). */
  actor?: Actor
  /** Audit stream settings (`audit.maxLen`) and a hook called after each recorded change. */
  audit?: AuditOptions
  /**
   * Called after each write of `create`, before the next (tests interleave other operations
   * there to prove the write order safe; a throw stands for a crash at that point).
   */
  afterWrite?: (step: CreateStep) => Promise<void>
}

/** The writes of `create`, in order. */
export type CreateStep = 'record' | 'id' | 'index'

/** The fields of a new record, checked; what create stores besides id and createdAt. */
export type ValidCreate = Pick<
  TokenRecord,
  'kind' | 'user' | 'album' | 'perms' | 'expiresAt' | 'description' | 'tenant'
>

const MAX_DESCRIPTION = 1024
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
/** `tokens.maxLifetime`'s default: Q suggests tokens live at most 12 months. */
export const DEFAULT_MAX_LIFETIME = 365 * 86_400_000

interface IdRule {
  max: number
  /** One allowed character. */
  char: RegExp
  pattern: RegExp
  text: string
}
const ALBUM_OR_USER: IdRule = { max: 128, char: /[A-Za-z0-9._@+-]/, pattern: ID_PATTERN, text: ID_RULE_TEXT }
const TOKEN_ID: IdRule = {
  max: 64,
  char: /[A-Za-z0-9._-]/,
  pattern: TOKEN_ID_PATTERN,
  text: TOKEN_ID_RULE_TEXT,
}

/** Check an id against token/ids.ts's rule, with a message naming what is wrong and the rule. */
function checkId(value: unknown, what: string, field: string, rule: IdRule): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new AdminInputError(`${what} must not be empty`, field)
  if (rule.pattern.test(value)) return value
  const shown = value.replace(new RegExp(CONTROL, 'g'), '?')
  if (value.length > rule.max) {
    throw new AdminInputError(
      `${what} is ${value.length} characters long; at most ${rule.max} are allowed (${rule.text})`,
      field,
    )
  }
  const bad = [...value].find((c) => !rule.char.test(c))
  if (bad !== undefined) {
    const named = bad === ':' ? "':'" : `character U+${bad.codePointAt(0)?.toString(16).padStart(4, '0')}`
    throw new AdminInputError(`${what} "${shown}" contains ${named}; use ${rule.text}`, field)
  }
  throw new AdminInputError(`${what} "${shown}" must start with a letter or digit (${rule.text})`, field)
}

/**
 * Check a user, album or tenant id (token/ids.ts: 1–128 characters of A–Z a–z 0–9 . _ @ + -,
 * starting with a letter or digit; so no ':', which `user:<id>` / `album:<id>` invalidation
 * messages would misread). `what` names it in the message (e.g. `--album`).
 */
export function checkName(value: unknown, what: string, field: string): string {
  return checkId(value, what, field, ALBUM_OR_USER)
}

/** Check a public token id (token/ids.ts: 1–64 characters of A–Z a–z 0–9 . _ -). */
export function checkTokenId(value: unknown, what = 'the token id', field = 'id'): string {
  return checkId(value, what, field, TOKEN_ID)
}

/** A lifetime as the config spells it: whole days as `365d`, else hours, else milliseconds. */
function formatDays(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${ms}ms`
}

/** Bounds of a new token. */
export interface CreateLimits {
  /** Longest lifetime from now, in ms (`tokens.maxLifetime`); none when absent (the CLI's precheck). */
  maxLifetime?: number
}

/**
 * Expiry in milliseconds since the epoch from `expiresAt` or `expiresIn`; mandatory, in the future
 * and at most `limits.maxLifetime` from now (never past the last date a Date can hold).
 */
export function resolveExpiry(
  input: Pick<CreateInput, 'expiresAt' | 'expiresIn'>,
  now: number,
  limits: CreateLimits = {},
): number {
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
  const max = limits.maxLifetime
  if (max !== undefined && at > now + max) {
    throw new AdminInputError(
      `the expiry is more than ${formatDays(max)} from now, the longest lifetime tokens.maxLifetime allows; choose an earlier expiry`,
      'expires',
    )
  }
  if (at > LAST_DATE) {
    throw new AdminInputError(
      'the expiry lies past the last date a clock can show; choose an earlier one (tokens.maxLifetime bounds it)',
      'expires',
    )
  }
  return at
}

/** Every check create makes, with no I/O: the record fields to store, or AdminInputError. */
export function validateCreate(input: CreateInput, now: number, limits: CreateLimits = {}): ValidCreate {
  const kind = input.kind as string
  if (kind === undefined) throw new AdminInputError('--kind is required: album or user', 'kind')
  if (kind !== 'album' && kind !== 'user') {
    throw new AdminInputError(`--kind must be "album" or "user", got "${String(kind)}"`, 'kind')
  }
  const user = input.user === undefined ? '' : checkName(input.user, '--user', 'user')
  const album = input.album === undefined ? '' : checkName(input.album, '--album', 'album')
  const tenant = input.tenant === undefined ? '' : checkName(input.tenant, '--tenant', 'tenant')
  const permText = Array.isArray(input.perms) ? input.perms.join(',') : (input.perms ?? '')
  const { perms, unknown } = parsePerms(permText)
  let description = ''
  if (input.description !== undefined) {
    description = String(input.description)
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
    expiresAt: resolveExpiry(input, now, limits),
    description,
    tenant,
  }
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

// Revoke only a record that exists and is not revoked yet (a revoked token keeps its first date).
const REVOKE_IF_LIVE = `local r = redis.call('HGET', KEYS[1], 'revokedAt')
if r == false then return 0 end
if tonumber(r) and tonumber(r) > 0 then return 0 end
redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1])
return 1`

const SCAN_COUNT = 500

/** The index sets a token's id is added to. */
function indexSets(keys: Keys, r: Pick<TokenRecord, 'user' | 'kind' | 'album'>): string[] {
  const sets = [keys.allTokens()]
  if (r.user) sets.push(keys.userTokens(r.user))
  if (r.kind === 'album') sets.push(keys.albumTokens(r.album))
  return sets
}

/**
 * SCAN every key matching `pattern`, in batches, on every master (a Cluster spreads keys over its
 * masters; SCAN on one node sees only that node's). A key seen twice is harmless to callers.
 */
async function scanKeys(
  redis: RedisClient,
  pattern: string,
  onBatch: (keys: string[]) => Promise<void>,
): Promise<void> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis]
  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
      if (batch.length) await onBatch(batch)
      cursor = next
    } while (cursor !== '0')
  }
}

/**
 * The token operations over one Redis connection (the CLI's, or the admin API's). Every change is
 * recorded in the audit trail (admin/audit.ts) after it is made, as `opts.actor`.
 */
export class TokenAdmin {
  private readonly now: () => number
  private readonly actor: Actor
  /** The audit trail these operations write to (list it with `audit.list`). */
  readonly audit: AuditTrail

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly opts: TokenAdminOptions,
  ) {
    this.now = opts.now ?? Date.now
    this.actor = opts.actor ?? { name: osUser() }
    this.audit = new AuditTrail(redis, keys, opts.audit)
  }

  /** The same operations, recorded as made by `actor` (the admin API: one per request). */
  withActor(actor: Actor): TokenAdmin {
    return new TokenAdmin(this.redis, this.keys, { ...this.opts, actor })
  }

  /** Mint a token and store its record (hash only). Returns the secret: show it once. */
  async create(input: CreateInput): Promise<CreatedToken> {
    const now = this.now()
    const valid = validateCreate(input, now, {
      maxLifetime: this.opts.maxLifetime ?? DEFAULT_MAX_LIFETIME,
    })
    const id = newTokenId()
    const token = mintSecret(this.opts.secretPrefix)
    const hash = hashSecret(token)
    const record: TokenRecord = {
      id,
      ...valid,
      createdAt: now,
      enabled: true,
      revokedAt: 0,
      attrs: {},
      userActive: true,
      userValidUntil: 0,
      lastUsedAt: 0,
    }
    const expireAt = record.expiresAt + this.opts.expiredGrace
    // Single-key commands only, so this works on Redis Cluster (a token's keys live in different
    // slots). The record first, then what points at it: the id key, then the index entries. A
    // crash half way leaves at worst a record nothing indexes, which `revokeUser`'s scan still
    // finds; an index entry never points at a token that is not whole yet, so nothing may take a
    // missing record for a stale entry. Each key gets its value and its expiry in one single-key
    // MULTI, so none outlives the expiry.
    await exec(
      this.redis
        .multi()
        .hset(this.keys.token(hash), toHash(record))
        .pexpireat(this.keys.token(hash), expireAt),
    )
    await this.opts.afterWrite?.('record')
    await exec(this.redis.multi().set(this.keys.id(id), hash).pexpireat(this.keys.id(id), expireAt))
    await this.opts.afterWrite?.('id')
    await Promise.all(indexSets(this.keys, record).map((set) => this.redis.sadd(set, id)))
    await this.opts.afterWrite?.('index')
    const info = toInfo(record, now)
    await this.record({
      op: 'token.create',
      tokenId: id,
      kind: info.kind,
      user: info.user,
      album: info.album,
      perms: info.perms,
      expiresAt: info.expiresAt,
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
    }
  }

  /**
   * Tokens still in Redis (expired ones stay for `tokens.expiredGrace`), oldest first, filtered by
   * user and/or album. Read only: ids whose record is missing are skipped, never removed (a
   * concurrent create may be writing them; `pruneIndex` removes what is provably gone).
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
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      for (const r of await this.loadMany(ids.slice(i, i + SCAN_COUNT))) {
        if (r && (album === undefined || r.record.album === album)) out.push(toInfo(r.record, now))
      }
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
  }

  /** One token by public id, or null when there is none. */
  async show(id: string): Promise<TokenInfo | null> {
    const found = await this.load(checkTokenId(id))
    return found ? toInfo(found.record, this.now()) : null
  }

  /** Revoke a token: permanent, and every replica refuses it on its next request. */
  async revoke(id: string): Promise<TokenInfo> {
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

  /**
   * Revoke every token of a user (album tokens created for them included). Returns how many were
   * revoked now. Works from the user's index and, so that a stale index (a create cut short, an
   * index entry lost) can never hide a live token, from a scan of every token record as well.
   */
  async revokeUser(user: string): Promise<number> {
    checkName(user, '--user', 'user')
    const hashes = new Set<TokenHash>()
    const ids = await this.members(this.keys.userTokens(user))
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      for (const f of await this.loadMany(ids.slice(i, i + SCAN_COUNT))) if (f) hashes.add(f.hash)
    }
    await scanKeys(this.redis, this.keys.tokenPattern(), async (batch) => {
      const owners = await Promise.all(batch.map((key) => this.redis.hget(key, 'user')))
      batch.forEach((key, i) => {
        if (owners[i] === user) hashes.add(this.keys.hashOfTokenKey(key))
      })
    })
    let count = 0
    for (const hash of hashes) {
      const revokedAt = this.now()
      // Only records still unrevoked: HSET_IF_UNREVOKED leaves a revoked one (and its date) as is.
      if ((await this.redis.eval(REVOKE_IF_LIVE, 1, this.keys.token(hash), String(revokedAt))) !== 0) {
        count++
        await this.publish({ kind: 'token', hash })
      }
    }
    await this.publish({ kind: 'user', user })
    await this.record({ op: 'token.revoke-user', user, count })
    return count
  }

  /**
   * Maintenance (`tokengate token prune-index`): remove from the token indexes (every token, per
   * user, per album) the ids whose id key has left Redis. The id key is written before any index
   * entry and expires `tokens.expiredGrace` after the token, so its absence proves the token gone
   * for longer than the grace period. Returns how many distinct ids were removed.
   */
  async pruneIndex(): Promise<{ removed: number }> {
    const sets = [this.keys.allTokens()]
    for (const pattern of this.keys.indexPatterns()) {
      await scanKeys(this.redis, pattern, async (batch) => {
        sets.push(...batch)
      })
    }
    const removed = new Set<string>()
    for (const set of sets) {
      const ids = await this.members(set)
      for (let i = 0; i < ids.length; i += SCAN_COUNT) {
        const batch = ids.slice(i, i + SCAN_COUNT)
        const present = await Promise.all(batch.map((id) => this.redis.exists(this.keys.id(id))))
        const gone = batch.filter((_, j) => present[j] === 0)
        if (gone.length === 0) continue
        await this.redis.srem(set, ...gone)
        for (const id of gone) removed.add(id)
      }
    }
    await this.record({ op: 'token.prune-index', count: removed.size })
    return { removed: removed.size }
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
    const found = await this.load(checkTokenId(id))
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

function notFound(id: string): AdminNotFound {
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
