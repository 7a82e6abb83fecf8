// User administration (issue 13 point 1: Q's users with department and user type, DataChain's
// known users with a lifecycle): add, show, list, set, deactivate and activate user records, kept
// as Redis hashes (`<prefix>user:<id>`, indexed in `<prefix>users`). The proxy reads a user's
// `status` and `validUntil` with each token lookup (token/redis-store.ts) and refuses the tokens of
// a deactivated or expired user; a change publishes `user:<id>` so every replica's cache drops that
// user's tokens at once. Every change is audited. Used by the CLI and the admin API alike.
import { publishInvalidation } from '../token/invalidation.js'
import type { Keys } from '../token/keys.js'
import { formatAttrs, LAST_USED_FIELD, parseAttrs, type TokenHash } from '../token/record.js'
import type { RedisClient } from '../token/redis-client.js'
import { mergeAttrs } from './attrs-input.js'
import type { Actor, AuditFacts, AuditTrail } from './audit.js'
import { checkName } from './id-input.js'
import { AdminInputError, AdminNotFound } from './input-error.js'
import { hsetIfExists, members, SCAN_COUNT } from './redis-ops.js'
import { type UserInput, validateUser } from './user-input.js'

export type UserStatus = 'active' | 'deactivated' | 'expired'

/** A user record as stored. */
export interface UserRecord {
  id: string
  name: string
  email: string
  attrs: Readonly<Record<string, string>>
  deactivated: boolean
  /** ms since the epoch, 0 for none. */
  validUntil: number
  createdAt: number
  updatedAt: number
}

/** A user as administrators see it. Dates are ISO 8601. */
export interface UserInfo {
  id: string
  name: string
  email: string
  attrs: Record<string, string>
  /** `expired`: active, but past validUntil (its tokens are refused as if deactivated). */
  status: UserStatus
  validUntil: string | null
  createdAt: string
  updatedAt: string
  /** Latest use of any of the user's tokens still in Redis (Q's "last active"); null when none. */
  lastActiveAt: string | null
}

export function userStatus(u: UserRecord, now: number): UserStatus {
  if (u.deactivated) return 'deactivated'
  return u.validUntil > 0 && u.validUntil <= now ? 'expired' : 'active'
}

function fromUserHash(h: Record<string, string>): UserRecord | null {
  if (!h.id) return null
  return {
    id: h.id,
    name: h.name ?? '',
    email: h.email ?? '',
    attrs: parseAttrs(h.attrs),
    deactivated: h.status === 'deactivated',
    validUntil: Number(h.validUntil) || 0,
    createdAt: Number(h.createdAt) || 0,
    updatedAt: Number(h.updatedAt) || 0,
  }
}

const iso = (ms: number) => new Date(ms).toISOString()

export interface UserAdminDeps {
  redis: RedisClient
  keys: Keys
  now: () => number
  actor: Actor
  audit: AuditTrail
}

export class UserAdmin {
  constructor(private readonly d: UserAdminDeps) {}

  /** Create a user record; refused when one exists (change it with `set`). */
  async add(id: string, input: UserInput): Promise<UserInfo> {
    checkName(id, 'the user', 'id')
    const valid = validateUser(input)
    const now = this.d.now()
    const key = this.d.keys.user(id)
    // The record first (HSETNX claims the id), then the index: a crash leaves no index entry
    // pointing at nothing.
    if ((await this.d.redis.hsetnx(key, 'id', id)) === 0)
      throw new AdminInputError(`user ${id} exists already; change it with \`tokengate user set\``, 'id')
    await this.d.redis.hset(key, {
      name: valid.name ?? '',
      email: valid.email ?? '',
      attrs: formatAttrs(mergeAttrs({}, valid.attrs ?? {})),
      status: 'active',
      validUntil: String(valid.validUntil ?? 0),
      createdAt: String(now),
      updatedAt: String(now),
    })
    await this.d.redis.sadd(this.d.keys.users(), id)
    // A user with tokens from before it had a record: its caches must now read the record.
    await this.publish(id)
    const info = await this.mustShow(id)
    await this.record({ op: 'user.add', user: id, ...this.facts(info) })
    return info
  }

  /** One user, or null when it has no record. */
  async show(id: string): Promise<UserInfo | null> {
    checkName(id, 'the user', 'id')
    const u = await this.get(id)
    return u && this.toInfo(u)
  }

  /** Every user with a record, by id. */
  async list(): Promise<UserInfo[]> {
    const ids = (await members(this.d.redis, this.d.keys.users())).sort()
    const out: UserInfo[] = []
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      const batch = ids.slice(i, i + SCAN_COUNT)
      const found = await Promise.all(batch.map((id) => this.get(id)))
      for (const u of found) if (u) out.push(await this.toInfo(u))
    }
    return out
  }

  /** Change name, email, attributes (merged; an empty value removes one) or validity. */
  async set(id: string, input: UserInput): Promise<UserInfo> {
    checkName(id, 'the user', 'id')
    const valid = validateUser(input)
    if (Object.keys(valid).length === 0)
      throw new AdminInputError('nothing to change: give --name, --email, --attr or --valid-until')
    const current = await this.mustGet(id)
    const fields: Record<string, string> = { updatedAt: String(this.d.now()) }
    if (valid.name !== undefined) fields.name = valid.name
    if (valid.email !== undefined) fields.email = valid.email
    if (valid.attrs !== undefined) fields.attrs = formatAttrs(mergeAttrs(current.attrs, valid.attrs))
    if (valid.validUntil !== undefined) fields.validUntil = String(valid.validUntil)
    if (!(await hsetIfExists(this.d.redis, this.d.keys.user(id), fields))) throw notFound(id)
    // validUntil is folded into cached token records: every replica must read it again.
    if (valid.validUntil !== undefined) await this.publish(id)
    const info = await this.mustShow(id)
    await this.record({ op: 'user.set', user: id, ...this.facts(info) })
    return info
  }

  /** Refuse every token of the user on every replica, and new tokens for it, until activated. */
  deactivate(id: string): Promise<UserInfo> {
    return this.setStatus(id, 'deactivated')
  }

  activate(id: string): Promise<UserInfo> {
    return this.setStatus(id, 'active')
  }

  /** The stored record, or null (token create reads it: registry check, attribute inheritance). */
  async get(id: string): Promise<UserRecord | null> {
    return fromUserHash(await this.d.redis.hgetall(this.d.keys.user(id)))
  }

  private async setStatus(id: string, status: 'active' | 'deactivated'): Promise<UserInfo> {
    checkName(id, 'the user', 'id')
    const current = await this.mustGet(id)
    const changed = current.deactivated !== (status === 'deactivated')
    if (changed) {
      const fields = { status, updatedAt: String(this.d.now()) }
      if (!(await hsetIfExists(this.d.redis, this.d.keys.user(id), fields))) throw notFound(id)
    }
    // Published even when unchanged: harmless, and it repairs a replica that missed it.
    await this.publish(id)
    const info = await this.mustShow(id)
    await this.record({ op: status === 'active' ? 'user.activate' : 'user.deactivate', user: id, changed })
    return info
  }

  private async mustGet(id: string): Promise<UserRecord> {
    const u = await this.get(id)
    if (!u) throw notFound(id)
    return u
  }

  private async mustShow(id: string): Promise<UserInfo> {
    return this.toInfo(await this.mustGet(id))
  }

  private async toInfo(u: UserRecord): Promise<UserInfo> {
    const last = await this.lastActive(u.id)
    return {
      id: u.id,
      name: u.name,
      email: u.email,
      attrs: { ...u.attrs },
      status: userStatus(u, this.d.now()),
      validUntil: u.validUntil > 0 ? iso(u.validUntil) : null,
      createdAt: iso(u.createdAt),
      updatedAt: iso(u.updatedAt),
      lastActiveAt: last > 0 ? iso(last) : null,
    }
  }

  /** The latest recorded use of the user's indexed tokens (0 when none). */
  private async lastActive(user: string): Promise<number> {
    const ids = await members(this.d.redis, this.d.keys.userTokens(user))
    let last = 0
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      const hashes = await Promise.all(
        ids.slice(i, i + SCAN_COUNT).map((id) => this.d.redis.get(this.d.keys.id(id))),
      )
      // One HGET per token (no pipeline: on Cluster the keys live in different slots).
      const used = await Promise.all(
        hashes.map((h) => (h ? this.d.redis.hget(this.d.keys.token(h as TokenHash), LAST_USED_FIELD) : null)),
      )
      for (const v of used) last = Math.max(last, Number(v) || 0)
    }
    return last
  }

  private async publish(user: string): Promise<void> {
    await publishInvalidation(this.d.redis, this.d.keys, { kind: 'user', user })
  }

  private async record(facts: AuditFacts): Promise<void> {
    await this.d.audit.record(this.d.actor, facts)
  }

  /** What the audit entry says of a user: validity and attributes (names and values; no secret). */
  private facts(info: UserInfo): Pick<AuditFacts, 'attrs' | 'validUntil'> {
    return {
      attrs: Object.entries(info.attrs).map(([k, v]) => `${k}=${v}`),
      ...(info.validUntil ? { validUntil: info.validUntil } : {}),
    }
  }
}

function notFound(id: string): AdminNotFound {
  return new AdminNotFound(`no user "${id}" (add it with \`tokengate user add ${id}\`)`, 'user')
}
