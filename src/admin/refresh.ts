// Refresh tokens (OAuth 2.0, RFC 6749 §6; DataChain's "Client" tokens): the Redis operations. A
// refresh token belongs to a *family* (public id `rtk_…`, what `token revoke` takes) that remembers
// how to mint its access tokens (the create input), its client, its expiry (none when offline)
// and which of its secrets is current. Every use rotates the secret; a superseded secret presented
// again revokes the family and every access token it minted. Access tokens themselves are ordinary
// token records made by TokenAdmin.create (so users, attributes and grants apply to them as to any
// other), carrying a `family` field; a refresh secret is never a token record, so the proxy never
// takes it as an access credential.
//
// Redis model (keys in token/keys.ts; `{id}` hash tags keep a family's two keys in one cluster slot,
// so the scripts below are atomic on Redis Cluster too):
//   <p>refresh:<sha256(secret)>   string → family id, for every secret the family ever had
//   <p>rfam:{<id>}                hash   id, kind, user, clientId, current (sha256 of the current
//                                        secret), accessTtl, expiresAt (0 = offline), createdAt,
//                                        rotatedAt, generation, revokedAt, revokedBy, input (JSON)
//   <p>rfam:{<id>}:tokens         zset   access token ids the family minted, scored by expiresAt
//   <p>user:<user>:refresh        set    family ids of a user (`token revoke --user`)
import { randomBytes } from 'node:crypto'
import { parseDuration } from '../config/duration.js'
import { hashSecret, mintSecret, verifySecret } from '../credential/secret.js'
import { OAuthInvalidClient, OAuthInvalidGrant } from '../errors.js'
import type { Keys } from '../token/keys.js'
import type { TokenHash } from '../token/record.js'
import type { RedisClient } from '../token/redis-client.js'
import type { Actor, AuditFacts, AuditTrail } from './audit.js'
import { AdminInputError, AdminNotFound } from './input-error.js'
import type { CreatedToken, CreateInput } from './tokens.js'

export const REFRESH_ID_PREFIX = 'rtk_'
export const DEFAULT_CLIENT_ID = 'tokengate'
export const DEFAULT_ACCESS_TTL = '15m'
export const DEFAULT_REFRESH_EXPIRES = '90d'
const MAX_ACCESS_TTL = 86_400_000
const MAX_REFRESH_EXPIRES = 3650 * 86_400_000
const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$/

/** Whether a client id is well formed (1–128 characters, no spaces or controls): safe in audit entries. */
export function isClientId(id: string): boolean {
  return CLIENT_ID.test(id)
}

/** Whether an id names a refresh token family rather than an access token. */
export function isRefreshId(id: string): boolean {
  return id.startsWith(REFRESH_ID_PREFIX)
}

/** The refresh options of `token create --refresh`. */
export interface RefreshOptions {
  /** The OAuth client the refresh token is bound to (`client_id`); default `tokengate`. */
  clientId?: string
  /** No expiry for the refresh token (DataChain's offline mode). */
  offline?: boolean
  /** Lifetime of each access token, e.g. `15m` (default). */
  accessTtl?: string
  /** Lifetime of the refresh token, e.g. `90d` (default); not with offline. */
  refreshExpires?: string
}

/** The options checked: milliseconds, 0 = offline. */
export interface ResolvedRefresh {
  clientId: string
  accessTtl: number
  /** When the family expires (ms since the epoch), 0 when offline. */
  expiresAt: number
}

/** What create returns: the access token (as TokenAdmin.create) and the refresh token, shown once. */
export interface CreatedRefresh extends CreatedToken {
  refreshToken: string
  /** The family's public id: what `token revoke` takes. */
  refreshTokenId: string
  /** ISO 8601, or null when offline. */
  refreshExpiresAt: string | null
  clientId: string
}

/** A successful refresh (RFC 6749 §5.1). */
export interface Refreshed {
  accessToken: string
  tokenId: string
  /** Seconds until the access token expires. */
  expiresIn: number
  refreshToken: string
  refreshTokenId: string
}

/** A family as administrators see it: no secret, no hash. */
export interface RefreshInfo {
  id: string
  kind: 'refresh'
  /** The kind of the access tokens it mints (`user`, `api`). */
  accessKind: string
  user: string
  clientId: string
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  status: 'active' | 'expired' | 'revoked'
  /** Access tokens revoked by this call (revoke only). */
  revokedTokens?: number
}

/** The access-token operations a family needs (TokenAdmin's). */
export interface AccessTokens {
  create(input: CreateInput): Promise<CreatedToken>
  revoke(id: string): Promise<unknown>
  readonly audit: AuditTrail
}

export interface RefreshTokensOptions {
  secretPrefix: string
  expiredGrace: number
  now: () => number
  actor: Actor
}

/** Check the refresh options against the create input; no I/O. */
export function resolveRefresh(input: CreateInput, opts: RefreshOptions, now: number): ResolvedRefresh {
  const kind = input.kind as string
  if (kind !== 'user' && kind !== 'api') {
    throw new AdminInputError(
      '--refresh is for user and api tokens (album tokens are handed out whole): use --kind user or api',
      'refresh',
    )
  }
  if (input.expiresAt !== undefined || input.expiresIn !== undefined) {
    throw new AdminInputError(
      `with --refresh the access token lives --access-ttl (default ${DEFAULT_ACCESS_TTL}) and the refresh token --refresh-expires (default ${DEFAULT_REFRESH_EXPIRES}): drop --expires`,
      'expires',
    )
  }
  const clientId = opts.clientId ?? DEFAULT_CLIENT_ID
  if (!CLIENT_ID.test(clientId)) {
    throw new AdminInputError(
      `--client-id "${clientId.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}" must be 1–128 characters from A–Z a–z 0–9 . _ @ + : -`,
      'clientId',
    )
  }
  const accessTtl = positiveDuration(opts.accessTtl ?? DEFAULT_ACCESS_TTL, '--access-ttl', MAX_ACCESS_TTL)
  if (opts.offline) {
    if (opts.refreshExpires !== undefined)
      throw new AdminInputError(
        'an offline refresh token never expires: drop --refresh-expires',
        'refreshExpires',
      )
    return { clientId, accessTtl, expiresAt: 0 }
  }
  const lifetime = positiveDuration(
    opts.refreshExpires ?? DEFAULT_REFRESH_EXPIRES,
    '--refresh-expires',
    MAX_REFRESH_EXPIRES,
  )
  if (lifetime < accessTtl)
    throw new AdminInputError('--refresh-expires is shorter than --access-ttl', 'refreshExpires')
  return { clientId, accessTtl, expiresAt: now + lifetime }
}

function positiveDuration(text: string, what: string, max: number): number {
  const ms = /^\s*\d+(\.\d+)?\s*$/.test(text) ? undefined : parseDuration(text)
  if (ms === undefined || ms < 1000 || ms > max) {
    throw new AdminInputError(
      `${what} "${String(text).slice(0, 40)}" must be a duration like 15m or 90d, from 1s to ${max / 86_400_000}d`,
      what.slice(2).replace(/-(\w)/g, (_m, c: string) => c.toUpperCase()),
    )
  }
  return ms
}

// Rotate: the one place that decides whether a presented secret wins. Atomic, so of two
// simultaneous uses of one secret exactly one finds it current; the other sees a superseded
// secret (reuse). KEYS[1] family; ARGV presented sha, new sha, now, client id.
const ROTATE = `local f = redis.call('HMGET', KEYS[1], 'current', 'revokedAt', 'expiresAt', 'clientId')
if not f[1] then return {'unknown'} end
if f[4] ~= ARGV[4] then return {'client'} end
if tonumber(f[2]) > 0 then return {'revoked'} end
if f[1] ~= ARGV[1] then return {'reused'} end
local exp = tonumber(f[3])
if exp > 0 and exp <= tonumber(ARGV[3]) then return {'expired'} end
redis.call('HSET', KEYS[1], 'current', ARGV[2], 'rotatedAt', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'generation', 1)
local r = redis.call('HMGET', KEYS[1], 'input', 'user', 'accessTtl', 'expiresAt')
return {'ok', r[1], r[2], r[3], r[4]}`

// Register a minted access token in its family and say whether the family was revoked meanwhile
// (then the caller revokes the token: a revocation's token list may have been read before it).
// KEYS[1] family, KEYS[2] its tokens; ARGV token expiresAt, token id, now.
const REGISTER = `redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 'gone' end
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) else redis.call('PERSIST', KEYS[2]) end
return redis.call('HGET', KEYS[1], 'revokedAt') or '0'`

// Revoke a family: mark it (once), keep it for the grace period, and return the ids of the access
// tokens still alive. KEYS[1] family, KEYS[2] its tokens; ARGV now, grace ms, cause.
const REVOKE = `if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local was = tonumber(redis.call('HGET', KEYS[1], 'revokedAt') or '0')
if was == 0 then redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1], 'revokedBy', ARGV[3]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or ttl > tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf')
table.insert(ids, 1, tostring(was))
return ids`

// HSET only if the record still exists (as admin/tokens.ts's update).
const HSET_IF_EXISTS = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`

/** The refresh token operations over one Redis connection, minting through `tokens`. */
export class RefreshTokens {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly tokens: AccessTokens,
    private readonly opts: RefreshTokensOptions,
  ) {}

  /** Mint an access token and its refresh token (`token create --refresh`). Secrets shown once. */
  async create(input: CreateInput, options: RefreshOptions): Promise<CreatedRefresh> {
    const now = this.opts.now()
    const r = resolveRefresh(input, options, now)
    const template: CreateInput = { ...input }
    const created = await this.tokens.create({
      ...template,
      expiresAt: accessExpiry(now, r.accessTtl, r.expiresAt),
    })
    const id = `${REFRESH_ID_PREFIX}${randomBytes(12).toString('base64url')}`
    const secret = mintSecret(this.opts.secretPrefix)
    const hash = hashSecret(secret)
    const family = this.keys.refreshFamily(id)
    const expireAt = r.expiresAt ? r.expiresAt + this.opts.expiredGrace : 0
    const write = this.redis.multi().hset(family, {
      id,
      kind: created.kind,
      user: created.user,
      clientId: r.clientId,
      current: hash,
      accessTtl: String(r.accessTtl),
      expiresAt: String(r.expiresAt),
      createdAt: String(now),
      rotatedAt: '0',
      generation: '0',
      revokedAt: '0',
      input: JSON.stringify(template),
    })
    if (expireAt) write.pexpireat(family, expireAt)
    await exec(write)
    await this.point(hash, id, expireAt)
    await this.adopt(id, created)
    if (created.user) await this.redis.sadd(this.keys.userRefresh(created.user), id)
    await this.record({
      op: 'refresh.create',
      refreshId: id,
      tokenId: created.id,
      user: created.user,
      clientId: r.clientId,
    })
    return {
      ...created,
      refreshToken: secret,
      refreshTokenId: id,
      refreshExpiresAt: r.expiresAt ? new Date(r.expiresAt).toISOString() : null,
      clientId: r.clientId,
    }
  }

  /**
   * Trade a refresh token for a new access token and a new refresh token (the presented one stops
   * working). Throws OAuthInvalidGrant / OAuthInvalidClient; a reused secret revokes the family.
   */
  async refresh(secret: string, clientId: string, reuseWindow: number): Promise<Refreshed> {
    let hash: TokenHash
    try {
      hash = verifySecret(secret, { prefix: this.opts.secretPrefix, allowLegacy: false })
    } catch {
      throw new OAuthInvalidGrant('grant_unknown')
    }
    const id = await this.redis.get(this.keys.refreshSecret(hash))
    if (!id) throw new OAuthInvalidGrant('grant_unknown')
    const now = this.opts.now()
    const next = mintSecret(this.opts.secretPrefix)
    const nextHash = hashSecret(next)
    const reply = (await this.redis.eval(
      ROTATE,
      1,
      this.keys.refreshFamily(id),
      hash,
      nextHash,
      String(now),
      clientId,
    )) as (string | null)[]
    switch (reply[0]) {
      case 'ok':
        break
      case 'client':
        throw new OAuthInvalidClient('client_mismatch', id)
      case 'revoked':
        throw new OAuthInvalidGrant('grant_revoked', id)
      case 'expired':
        throw new OAuthInvalidGrant('grant_expired', id)
      case 'reused': {
        const count = await this.revokeFamily(id, 'reuse')
        await this.record({ op: 'refresh.reuse', refreshId: id, clientId, count })
        throw new OAuthInvalidGrant('grant_reused', id)
      }
      default:
        throw new OAuthInvalidGrant('grant_unknown', id)
    }
    const [, inputJson, user, ttlText, expText] = reply as string[]
    const familyExpiresAt = Number(expText)
    let created: CreatedToken
    try {
      const input = JSON.parse(inputJson ?? '{}') as CreateInput
      created = await this.tokens.create({
        ...input,
        expiresAt: accessExpiry(now, Number(ttlText), familyExpiresAt),
      })
    } catch (err) {
      // The token rules refuse to mint for this user now (deactivated, past its validity…).
      if (!(err instanceof AdminInputError)) throw err
      await this.revokeFamily(id, 'refused')
      throw new OAuthInvalidGrant('grant_refused', id)
    }
    await this.point(nextHash, id, familyExpiresAt ? familyExpiresAt + this.opts.expiredGrace : 0)
    // An offline family lives on: its superseded secrets are recognised as reuse for reuseWindow.
    if (!familyExpiresAt) await this.redis.pexpire(this.keys.refreshSecret(hash), reuseWindow)
    await this.adopt(id, created)
    await this.record({ op: 'refresh.rotate', refreshId: id, tokenId: created.id, user, clientId })
    return {
      accessToken: created.token,
      tokenId: created.id,
      expiresIn: Math.max(0, Math.round((Date.parse(created.expiresAt) - now) / 1000)),
      refreshToken: next,
      refreshTokenId: id,
    }
  }

  /** Revoke a family by its id (`token revoke rtk_…`): its refresh token and every live access token it minted. */
  async revoke(id: string): Promise<RefreshInfo> {
    const before = await this.load(id)
    if (!before) {
      throw new AdminNotFound(
        `no refresh token with id "${id}" (expired ones leave Redis after tokens.expiredGrace)`,
        'id',
      )
    }
    const count = await this.revokeFamily(id, 'admin')
    await this.record({ op: 'refresh.revoke', refreshId: id, user: before.user, count })
    return { ...((await this.load(id)) ?? before), revokedTokens: count }
  }

  /** Revoke every refresh family of a user (`token revoke --user`); how many were still active. */
  async revokeUser(user: string): Promise<number> {
    const ids = await this.redis.smembers(this.keys.userRefresh(user))
    let count = 0
    const gone: string[] = []
    for (const id of ids) {
      const info = await this.load(id)
      if (!info) gone.push(id)
      else if (info.status === 'active') count++
      if (info) await this.revokeFamily(id, 'user')
    }
    if (gone.length) await this.redis.srem(this.keys.userRefresh(user), ...gone)
    return count
  }

  /** A family as administrators see it, or null. */
  async show(id: string): Promise<RefreshInfo | null> {
    return this.load(id)
  }

  private async load(id: string): Promise<RefreshInfo | null> {
    const h = await this.redis.hgetall(this.keys.refreshFamily(id))
    if (!h.id) return null
    const expiresAt = Number(h.expiresAt) || 0
    const revokedAt = Number(h.revokedAt) || 0
    const now = this.opts.now()
    return {
      id: h.id,
      kind: 'refresh',
      accessKind: h.kind ?? '',
      user: h.user ?? '',
      clientId: h.clientId ?? '',
      createdAt: new Date(Number(h.createdAt) || 0).toISOString(),
      expiresAt: expiresAt ? new Date(expiresAt).toISOString() : null,
      revokedAt: revokedAt ? new Date(revokedAt).toISOString() : null,
      status: revokedAt ? 'revoked' : expiresAt && expiresAt <= now ? 'expired' : 'active',
    }
  }

  /** Mark the family revoked and revoke its live access tokens; how many access tokens were revoked. */
  private async revokeFamily(id: string, cause: 'admin' | 'reuse' | 'user' | 'refused'): Promise<number> {
    const reply = (await this.redis.eval(
      REVOKE,
      2,
      this.keys.refreshFamily(id),
      this.keys.refreshFamilyTokens(id),
      String(this.opts.now()),
      String(this.opts.expiredGrace),
      cause,
    )) as string[] | null
    if (!reply) return 0
    let count = 0
    for (const tokenId of reply.slice(1)) {
      try {
        await this.tokens.revoke(tokenId)
        count++
      } catch (err) {
        if (!(err instanceof AdminNotFound)) throw err
      }
    }
    return count
  }

  /** Add a minted access token to its family; revoke it if the family was revoked meanwhile. */
  private async adopt(id: string, created: CreatedToken): Promise<void> {
    const tokenHash = hashSecret(created.token)
    await this.redis.eval(HSET_IF_EXISTS, 1, this.keys.token(tokenHash), 'family', id)
    const state = await this.redis.eval(
      REGISTER,
      2,
      this.keys.refreshFamily(id),
      this.keys.refreshFamilyTokens(id),
      String(Date.parse(created.expiresAt)),
      created.id,
      String(this.opts.now()),
    )
    if (state !== '0') await this.tokens.revoke(created.id)
  }

  private async point(hash: TokenHash, id: string, expireAt: number): Promise<void> {
    const key = this.keys.refreshSecret(hash)
    if (expireAt) await this.redis.set(key, id, 'PXAT', expireAt)
    else await this.redis.set(key, id)
  }

  private async record(facts: AuditFacts): Promise<void> {
    await this.tokens.audit.record(this.opts.actor, facts)
  }
}

/** An access token's expiry: now + ttl, never past the family's own expiry (0 = offline). */
function accessExpiry(now: number, ttl: number, familyExpiresAt: number): number {
  return familyExpiresAt ? Math.min(now + ttl, familyExpiresAt) : now + ttl
}

async function exec(p: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<void> {
  for (const [err] of (await p.exec()) ?? []) if (err) throw err
}
