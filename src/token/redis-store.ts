// Token lookup, Redis side: the TokenStore over an ioredis client. One command per question
// (SISMEMBER for membership, SMEMBERS for a user's albums and for the study sets of an album or
// inbox). A token lookup also reads the token's user record (status, validUntil) and folds it into
// the TokenRecord, so a deactivated user's tokens are refused from the cached record alone (no
// Redis call on a cache hit): one script round trip on a single node or Sentinel; on Cluster,
// where the two keys live in different slots, HGETALL then HMGET. Any Redis failure becomes
// StoreUnavailable: the pipeline answers 503 and never lets an unverified token through.
import { createHash } from 'node:crypto'
import { Cluster, type Redis } from 'ioredis'
import { StoreUnavailable } from '../errors.js'
import type { Keys } from './keys.js'
import { foldUser, fromHash, type TokenHash, type TokenRecord, USER_LOOKUP_FIELDS } from './record.js'
import { closeRedis } from './redis-client.js'
import type { TokenStore } from './store.js'

/** Map an ioredis failure to the store error (the message names no key: keys carry user ids). */
export function storeError(err: unknown): StoreUnavailable {
  const message = (err as Error)?.message ?? ''
  return new StoreUnavailable(/timed out/i.test(message) ? 'redis_timeout' : 'redis_error', message)
}

// The token record and, when it names a user, that user's lookup fields, in one round trip. The
// user key is built in the script (single node / Sentinel only: on Cluster it may live elsewhere).
// A missing user record answers nils, read as "no record" (active, no validity end).
const LOOKUP_WITH_USER = `local t = redis.call('HGETALL', KEYS[1])
local user = nil
for i = 1, #t, 2 do if t[i] == 'user' then user = t[i + 1] end end
if user == nil or user == '' then return {t, {}} end
return {t, redis.call('HMGET', ARGV[1] .. user, unpack(ARGV, 2))}`

const LOOKUP_SHA = createHash('sha1').update(LOOKUP_WITH_USER).digest('hex')

type LookupReply = [string[], (string | null)[]]

export class RedisTokenStore implements TokenStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: Keys,
    /** Told of every failed command (metrics); the error itself is thrown as StoreUnavailable. */
    private readonly onCommandError: () => void = () => {},
  ) {
    if (!(redis instanceof Cluster)) {
      // Load the script on every (re)connection, ahead of any lookup on it, so lookups are EVALSHA
      // hits (a NOSCRIPT, after a script flush, falls back to one EVAL).
      const load = () => {
        redis.script('LOAD', LOOKUP_WITH_USER).catch(() => {})
      }
      if (redis.status === 'ready') load()
      redis.on('ready', load)
    }
  }

  /** The lookup script by its sha; the script itself only when Redis lost it (NOSCRIPT). */
  private async lookupScript(redis: Redis, hash: TokenHash): Promise<LookupReply> {
    const args = [this.keys.token(hash), this.keys.userPrefix(), ...USER_LOOKUP_FIELDS]
    try {
      return (await redis.evalsha(LOOKUP_SHA, 1, ...args)) as LookupReply
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err
      return (await redis.eval(LOOKUP_WITH_USER, 1, ...args)) as LookupReply
    }
  }

  private fail(err: unknown): StoreUnavailable {
    this.onCommandError()
    return storeError(err)
  }

  async lookup(hash: TokenHash): Promise<TokenRecord | null> {
    let fields: Record<string, string>
    let user: (string | null)[] = []
    try {
      if (this.redis instanceof Cluster) {
        fields = await this.redis.hgetall(this.keys.token(hash))
        if (fields.user) user = await this.redis.hmget(this.keys.user(fields.user), ...USER_LOOKUP_FIELDS)
      } else {
        const [flat, owner] = await this.lookupScript(this.redis, hash)
        fields = {}
        for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string
        user = owner
      }
    } catch (err) {
      throw this.fail(err)
    }
    // An empty reply is no record; a malformed one fails closed (fromHash returns null).
    const record = fromHash(fields)
    return record && foldUser(record, user[0] ?? null, user[1] ?? null)
  }

  async isAlbumMember(user: string, album: string): Promise<boolean> {
    try {
      return (await this.redis.sismember(this.keys.userAlbums(user), album)) === 1
    } catch (err) {
      throw this.fail(err)
    }
  }

  albumStudies(album: string): Promise<ReadonlySet<string>> {
    return this.set(this.keys.albumStudies(album))
  }

  inboxStudies(user: string): Promise<ReadonlySet<string>> {
    return this.set(this.keys.userInbox(user))
  }

  async userAlbums(user: string): Promise<readonly string[]> {
    try {
      return await this.redis.smembers(this.keys.userAlbums(user))
    } catch (err) {
      throw this.fail(err)
    }
  }

  // SMEMBERS in one reply: a 10,000-study set is ~700 KB, read at most once per cache TTL.
  private async set(key: string): Promise<ReadonlySet<string>> {
    try {
      return new Set(await this.redis.smembers(key))
    } catch (err) {
      throw this.fail(err)
    }
  }

  async ping(): Promise<void> {
    try {
      await this.redis.ping()
    } catch (err) {
      throw this.fail(err)
    }
  }

  async close(): Promise<void> {
    await closeRedis(this.redis)
  }
}
