// Token administration, the Redis operations (DESIGN §1, §3): create, list, show, revoke,
// disable and enable tokens, manage album membership, and prune the indexes. The CLI and the admin
// HTTP API both call this class; input rules are in admin/token-input.ts (one schema for both),
// presentation in admin/token-view.ts, users in admin/users.ts (reachable as `.users`). Operations
// return plain data; the only secret that ever leaves this module is create's return value (only
// its sha256 is stored). Input problems throw AdminInputError with a message saying what to change.
import { randomBytes } from 'node:crypto'
import { hashSecret, mintSecret } from '../credential/secret.js'
import { publishInvalidation } from '../token/invalidation.js'
import type { EvictKey, Keys } from '../token/keys.js'
import { fromHash, type TokenHash, type TokenRecord, toHash } from '../token/record.js'
import type { RedisClient } from '../token/redis-client.js'
import type { StudySetRef } from '../token/study-sets.js'
import { mergeAttrs } from './attrs-input.js'
import { type Actor, type AuditFacts, type AuditOptions, AuditTrail, osUser } from './audit.js'
import { GrantOps } from './grants-ops.js'
import { checkName, checkTokenId } from './id-input.js'
import { AdminInputError, AdminNotFound } from './input-error.js'
import { exec, hsetIfExists, members, REVOKE_IF_LIVE, SCAN_COUNT, scanKeys, zmembers } from './redis-ops.js'
import { isRefreshId, type RefreshInfo, RefreshTokens } from './refresh.js'
import { pageSet, pageStudies, type SetPageInput } from './set-page.js'
import { BulkOps } from './token-bulk.js'
import { type CreateInput, DEFAULT_MAX_LIFETIME, type ValidCreate, validateCreate } from './token-input.js'
import { type Found, TokenListing, type TokenPage } from './token-listing.js'
import { MAX_PAGE, parseQuery, type TokenQueryInput } from './token-query.js'
import { type CreatedToken, type TokenInfo, toInfo } from './token-view.js'
import { UserAdmin, userStatus } from './users.js'

// The names other modules (CLI, API, tests, bench) import from here.
export { checkName, checkTokenId } from './id-input.js'
export {
  type CreateInput,
  type CreateLimits,
  checkDescription,
  DEFAULT_MAX_LIFETIME,
  resolveExpiry,
  type ValidCreate,
  validateCreate,
} from './token-input.js'
export {
  type CreatedToken,
  PERMISSIONS,
  statusOf,
  type TokenInfo,
  type TokenStatus,
  toInfo,
} from './token-view.js'
export { AdminInputError, AdminNotFound }

export interface TokenAdminOptions {
  /** Prefix of minted secrets (`tokens.prefix`). */
  secretPrefix: string
  /** `tokens.checksumKey`: minted secrets carry a keyed checksum (credential/secret.ts). */
  checksumKey?: string | undefined
  /** Milliseconds Redis keeps a record after its expiry (`tokens.expiredGrace`). */
  expiredGrace: number
  /** Longest token lifetime in ms (`tokens.maxLifetime`; default 365 days). */
  maxLifetime?: number
  /**
   * `users.registry`: `required` creates tokens only for users with an active record; `optional`
   * (the default) also for users without one (a record, where one exists, is enforced alike).
   */
  registry?: 'optional' | 'required'
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

/** A new public id: `tok_` + 16 URL-safe characters (96 random bits). */
export function newTokenId(): string {
  return `tok_${randomBytes(12).toString('base64url')}`
}

/** The index sets a token's id is added to. */
function indexSets(keys: Keys, r: Pick<TokenRecord, 'user' | 'kind' | 'album'>): string[] {
  const sets = [keys.allTokens()]
  if (r.user) sets.push(keys.userTokens(r.user))
  if (r.kind === 'album') sets.push(keys.albumTokens(r.album))
  return sets
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
  /** The user operations, with the same actor and audit trail. */
  readonly users: UserAdmin
  /** Refresh tokens (admin/refresh.ts), minting their access tokens through this. */
  readonly refresh: RefreshTokens
  /** Changes to live tokens (admin/grants-ops.ts): grants, enabled flag, description. */
  readonly grants: GrantOps
  /** Bulk revoke, disable, enable and delete (admin/token-bulk.ts), audited once each. */
  readonly bulk: BulkOps

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly opts: TokenAdminOptions,
  ) {
    this.now = opts.now ?? Date.now
    this.actor = opts.actor ?? { name: osUser() }
    this.audit = new AuditTrail(redis, keys, opts.audit)
    this.users = new UserAdmin({ redis, keys, now: this.now, actor: this.actor, audit: this.audit })
    this.refresh = new RefreshTokens(redis, keys, this, { ...opts, now: this.now, actor: this.actor })
    this.bulk = new BulkOps({
      redis,
      keys,
      listing: this.listing,
      load: (ids) => this.loadMany(ids),
      now: this.now,
      record: (facts) => this.record(facts),
    })
    this.grants = new GrantOps(redis, keys, {
      now: this.now,
      actor: this.actor,
      ...(opts.audit ? { audit: opts.audit } : {}),
    })
  }

  /** The same operations, recorded as made by `actor` (the admin API: one per request). */
  withActor(actor: Actor): TokenAdmin {
    return new TokenAdmin(this.redis, this.keys, { ...this.opts, actor })
  }

  /**
   * Mint a token and store its record (hash only). Returns the secret: show it once. Other modules
   * (self-service tokens, refresh flows) call this too, with the same checks and audit.
   */
  async create(input: CreateInput): Promise<CreatedToken> {
    const now = this.now()
    const valid = validateCreate(input, now, {
      maxLifetime: this.opts.maxLifetime ?? DEFAULT_MAX_LIFETIME,
    })
    const attrs = await this.ownerAttrs(valid, now)
    const id = newTokenId()
    const token = mintSecret(this.opts.secretPrefix, this.opts.checksumKey)
    const hash = hashSecret(token)
    const record: TokenRecord = {
      id,
      ...valid,
      attrs,
      createdAt: now,
      enabled: true,
      revokedAt: 0,
      userActive: true,
      userValidUntil: 0,
      lastUsedAt: 0,
      createdBy: this.actor.client ? `${this.actor.name} (${this.actor.client})` : this.actor.name,
    }
    const stored = toHash(record)
    const expireAt = record.expiresAt + this.opts.expiredGrace
    // Single-key commands only, so this works on Redis Cluster (a token's keys live in different
    // slots). The record first, then what points at it: the id key, then the index entries. A
    // crash half way leaves at worst a record nothing indexes, which `revokeUser`'s scan still
    // finds; an index entry never points at a token that is not whole yet, so nothing may take a
    // missing record for a stale entry. Each key gets its value and its expiry in one single-key
    // MULTI, so none outlives the expiry.
    await exec(
      this.redis.multi().hset(this.keys.token(hash), stored).pexpireat(this.keys.token(hash), expireAt),
    )
    await this.opts.afterWrite?.('record')
    await exec(this.redis.multi().set(this.keys.id(id), hash).pexpireat(this.keys.id(id), expireAt))
    await this.opts.afterWrite?.('id')
    await Promise.all([
      ...indexSets(this.keys, record).map((set) => this.redis.sadd(set, id)),
      this.redis.zadd(this.keys.tokensByCreated(), record.createdAt, id),
      this.redis.zadd(this.keys.tokensByExpires(), record.expiresAt, id),
    ])
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
      attrs: Object.entries(info.attrs).map(([k, v]) => `${k}=${v}`),
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
      attrs: info.attrs,
      ...(info.grants ? { grants: info.grants } : {}),
    }
  }

  /**
   * The new token's attributes: its user's (when the user has a record) with the token's own over
   * them. Refuses a deactivated or expired user, and, with `users.registry: required`, a user
   * without a record (or no user at all).
   */
  private async ownerAttrs(valid: ValidCreate, now: number): Promise<Record<string, string>> {
    const required = this.opts.registry === 'required'
    if (!valid.user) {
      if (required)
        throw new AdminInputError('users.registry is required: give the token a user with --user ID', 'user')
      return mergeAttrs({}, valid.attrs)
    }
    const owner = await this.users.get(valid.user)
    if (!owner) {
      if (required)
        throw new AdminInputError(
          `no user "${valid.user}" (users.registry is required): add it with \`tokengate user add ${valid.user}\``,
          'user',
        )
      return mergeAttrs({}, valid.attrs)
    }
    const status = userStatus(owner, now)
    if (status !== 'active')
      throw new AdminInputError(
        `user ${valid.user} is ${status}; tokens are refused for it (\`tokengate user activate\` or \`user set --valid-until\`)`,
        'user',
      )
    return mergeAttrs(owner.attrs, valid.attrs)
  }

  /**
   * Every token still in Redis (expired ones stay for `tokens.expiredGrace`) matching a user and/or
   * album, oldest first (self-service and tests; operators page with `listPage`).
   */
  async list(filter: { user?: string; album?: string } = {}): Promise<TokenInfo[]> {
    const user = filter.user === undefined ? undefined : checkName(filter.user, '--user', 'user')
    const album = filter.album === undefined ? undefined : checkName(filter.album, '--album', 'album')
    const out: TokenInfo[] = []
    let cursor: string | undefined
    do {
      const input: TokenQueryInput = { limit: MAX_PAGE }
      if (user !== undefined) input.user = user
      if (album !== undefined) input.album = album
      if (cursor !== undefined) input.cursor = cursor
      const page = await this.listPage(input)
      out.push(...page.items)
      cursor = page.nextCursor ?? undefined
    } while (cursor !== undefined)
    return out
  }

  /**
   * One page of tokens (`token list`, `GET /tokens`): filtered, sorted, from a cursor. Read only:
   * ids whose record is missing are skipped, never removed (a concurrent create may be writing
   * them; `pruneIndex` removes what is provably gone). admin/token-listing.ts says how it stays fast.
   */
  async listPage(input: TokenQueryInput): Promise<TokenPage> {
    const now = this.now()
    return this.listing.page(parseQuery(input, now), now)
  }

  /** One token by public id, or null when there is none. */
  async show(id: string): Promise<TokenInfo | null> {
    const found = await this.load(checkTokenId(id))
    return found ? toInfo(found.record, this.now()) : null
  }

  /**
   * What `token show` and `GET /tokens/{id}` answer: a token by its public id, or a refresh token
   * family by its `rtk_` id (the id `token revoke` takes for it); null when there is none.
   */
  async showAny(id: string): Promise<TokenInfo | RefreshInfo | null> {
    return isRefreshId(id) ? this.refresh.show(id) : this.show(id)
  }

  /**
   * The token a secret belongs to (`token identify`: trace a leaked secret), found by the secret's
   * sha256 as the proxy finds it; `revoke` revokes it at once. The secret is never stored, logged
   * nor echoed: a miss says so without repeating it.
   */
  async identify(secret: string, opts: { revoke?: boolean } = {}): Promise<TokenInfo> {
    const text = secret.trim()
    if (!text) throw new AdminInputError('no secret given (pipe it on standard input)', 'secret')
    const hash = hashSecret(text)
    const record = fromHash(await this.redis.hgetall(this.keys.token(hash)))
    if (!record)
      throw new AdminNotFound(
        'no token has this secret (never issued here, or expired out of Redis after tokens.expiredGrace)',
        'secret',
      )
    if (opts.revoke) return (await this.revoke(record.id)) as TokenInfo
    return toInfo(record, this.now())
  }

  /** Revoke a token: permanent, and every replica refuses it on its next request. */
  async revoke(id: string): Promise<TokenInfo | RefreshInfo> {
    if (isRefreshId(id)) return this.refresh.revoke(id)
    const { hash, record } = await this.mustLoad(id)
    const changed = record.revokedAt === 0
    if (changed) {
      record.revokedAt = this.now()
      if (!(await this.writeFields(hash, { revokedAt: String(record.revokedAt) }))) throw notFound(record.id)
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
    count += await this.refresh.revokeUser(user)
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
  async pruneIndex(): Promise<{ removed: number; membersAdded: number }> {
    const sets = [this.keys.allTokens()]
    for (const pattern of this.keys.indexPatterns()) {
      await scanKeys(this.redis, pattern, async (batch) => {
        sets.push(...batch)
      })
    }
    const removed = new Set<string>()
    for (const set of sets)
      await this.dropGone(await this.members(set), removed, (gone) => this.redis.srem(set, ...gone))
    for (const zset of [this.keys.tokensByCreated(), this.keys.tokensByExpires()])
      await this.dropGone(await zmembers(this.redis, zset), removed, (gone) => this.redis.zrem(zset, ...gone))
    await this.backfillSorted()
    const membersAdded = await this.backfillMembers()
    await this.record({ op: 'token.prune-index', count: removed.size })
    return { removed: removed.size, membersAdded }
  }

  /**
   * Add to each album's members set (`album members`) the users whose albums set names the album:
   * memberships made before that reverse index existed. SCANs every `user:*:albums` key (a user
   * record whose id ends in `:albums` matches too: only sets are read). Returns how many were added.
   */
  private async backfillMembers(): Promise<number> {
    let added = 0
    await scanKeys(this.redis, this.keys.userAlbumsPattern(), async (batch) => {
      for (const key of batch) {
        if ((await this.redis.type(key)) !== 'set') continue
        const user = this.keys.userOfAlbumsKey(key)
        for (const album of await this.members(key))
          added += await this.redis.sadd(this.keys.albumMembers(album), user)
      }
    })
    return added
  }

  /** Remove (with `remove`) the ids of an index whose id key is gone; note them in `removed`. */
  private async dropGone(
    ids: string[],
    removed: Set<string>,
    remove: (gone: string[]) => Promise<unknown>,
  ): Promise<void> {
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      const batch = ids.slice(i, i + SCAN_COUNT)
      const present = await Promise.all(batch.map((id) => this.redis.exists(this.keys.id(id))))
      const gone = batch.filter((_, j) => present[j] === 0)
      if (gone.length === 0) continue
      await remove(gone)
      for (const id of gone) removed.add(id)
    }
  }

  /**
   * Add to the sorted indexes (by created, by expires) the listed tokens they lack: tokens created
   * before those indexes existed (`token prune-index` runs it once after an upgrade).
   */
  private async backfillSorted(): Promise<void> {
    const ids = await this.members(this.keys.allTokens())
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      const batch = ids.slice(i, i + SCAN_COUNT)
      const scores = await Promise.all(batch.map((id) => this.redis.zscore(this.keys.tokensByCreated(), id)))
      const missing = batch.filter((_, j) => scores[j] === null)
      if (missing.length === 0) continue
      for (const f of await this.loadMany(missing)) {
        if (!f) continue
        await this.redis.zadd(this.keys.tokensByCreated(), f.record.createdAt, f.record.id)
        await this.redis.zadd(this.keys.tokensByExpires(), f.record.expiresAt, f.record.id)
      }
    }
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
    // The reverse index after the set access is read from (`album members` only lists).
    await this.redis.sadd(this.keys.albumMembers(album), user)
    if (added > 0) await this.publish({ kind: 'user', user })
    await this.record({ op: 'album.add-member', album, user, changed: added > 0 })
    return { changed: added > 0 }
  }

  /** A page of an album's members, sorted (`album members`, `GET /albums/{album}/members`). */
  async albumMembers(album: string, page: SetPageInput = {}): Promise<TokenPage<string>> {
    checkName(album, 'the album', 'album')
    return pageSet(this.redis, this.keys.albumMembers(album), page)
  }

  /** A page of an album's studies or a user's inbox, sorted (`GET /albums/{album}/studies`). */
  async studies(ref: StudySetRef, page: SetPageInput = {}): Promise<TokenPage<string>> {
    if (ref.kind === 'album') checkName(ref.album, 'the album', 'album')
    else checkName(ref.user, 'the user', 'user')
    return pageStudies(this.redis, this.keys, ref, page)
  }

  /** A page of the albums a user is a member of (`user albums`, `GET /users/{user}/albums`). */
  async userAlbums(user: string, page: SetPageInput = {}): Promise<TokenPage<string>> {
    checkName(user, 'the user', 'user')
    return pageSet(this.redis, this.keys.userAlbums(user), page)
  }

  /** Remove `user` from `album`. Returns whether it changed. */
  async removeMember(album: string, user: string): Promise<{ changed: boolean }> {
    checkName(album, 'the album', 'album')
    checkName(user, 'the user', 'user')
    const removed = await this.redis.srem(this.keys.userAlbums(user), album)
    await this.redis.srem(this.keys.albumMembers(album), user)
    if (removed > 0) await this.publish({ kind: 'user', user })
    await this.record({ op: 'album.remove-member', album, user, changed: removed > 0 })
    return { changed: removed > 0 }
  }

  private async setEnabled(id: string, enabled: boolean): Promise<TokenInfo> {
    const { hash, record } = await this.mustLoad(id)
    if (enabled && record.revokedAt > 0) throw revokedForever(record)
    const changed = record.enabled !== enabled
    if (changed) {
      record.enabled = enabled
      if (!(await this.writeFields(hash, { enabled: toHash(record).enabled as string })))
        throw notFound(record.id)
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
  private writeFields(hash: TokenHash, fields: Record<string, string>): Promise<boolean> {
    return hsetIfExists(this.redis, this.keys.token(hash), fields)
  }

  // Replicas evict their caches on this channel (token/invalidation.ts subscribes).
  private async publish(key: EvictKey): Promise<void> {
    await publishInvalidation(this.redis, this.keys, key)
  }

  private members(set: string): Promise<string[]> {
    return members(this.redis, set)
  }

  /** The listing over this connection (bulk commands select through it). */
  get listing(): TokenListing {
    return new TokenListing(this.redis, this.keys, (ids) => this.loadMany(ids))
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
  async loadMany(ids: string[]): Promise<(Found | null)[]> {
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

function revokedForever(record: TokenRecord): AdminInputError {
  return new AdminInputError(
    `token ${record.id} was revoked at ${new Date(record.revokedAt).toISOString()}; revocation is permanent, create a new token instead`,
    'id',
  )
}

export function notFound(id: string): AdminNotFound {
  return new AdminNotFound(
    `no token with id "${id}" (check the id with \`tokengate token list\`; expired tokens leave Redis after tokens.expiredGrace)`,
    'id',
  )
}
