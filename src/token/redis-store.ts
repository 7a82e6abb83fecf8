// Token lookup, Redis side: the TokenStore over an ioredis client. One command per question
// (SISMEMBER for membership, SMEMBERS for a user's albums and for the study sets of an album or
// inbox). A token lookup also reads the token's user record (status, validUntil) and folds it into
// the TokenRecord, so a deactivated user's tokens are refused from the cached record alone (no
// Redis call on a cache hit): on a single node or Sentinel one script call for all the lookups of
// a turn of the event loop (lookup-batch.ts); on Cluster, where the two keys live in different
// slots, two HMGETs. A lookup reads the fields the gate decides with (record.ts LOOKUP_FIELDS),
// not the whole hash: in Redis, a script's cost is mostly converting replies to Lua and back,
// per string (bench/lookup.js). Any Redis failure becomes StoreUnavailable: the pipeline answers
// 503 and never lets an unverified token through.
import { Cluster, type Redis } from 'ioredis'
import { StoreUnavailable } from '../errors.js'
import type { Keys } from './keys.js'
import { LookupBatcher, type LookupValues } from './lookup-batch.js'
import {
  foldUser,
  fromLookup,
  LOOKUP_FIELDS,
  type TokenHash,
  type TokenRecord,
  USER_LOOKUP_FIELDS,
} from './record.js'
import { closeRedis } from './redis-client.js'
import type { TokenStore } from './store.js'

/** Map an ioredis failure to the store error (the message names no key: keys carry user ids). */
export function storeError(err: unknown): StoreUnavailable {
  const message = (err as Error)?.message ?? ''
  return new StoreUnavailable(/timed out/i.test(message) ? 'redis_timeout' : 'redis_error', message)
}

const USER_AT = LOOKUP_FIELDS.indexOf('user')

export class RedisTokenStore implements TokenStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: Keys,
    /** Told of every failed command (metrics); the error itself is thrown as StoreUnavailable. */
    private readonly onCommandError: () => void = () => {},
  ) {
    this.batch = redis instanceof Cluster ? null : new LookupBatcher(redis, keys.userPrefix())
  }

  /** Single node and Sentinel: lookups batched per turn of the event loop (lookup-batch.ts). */
  private readonly batch: LookupBatcher | null

  private fail(err: unknown): StoreUnavailable {
    this.onCommandError()
    return storeError(err)
  }

  async lookup(hash: TokenHash): Promise<TokenRecord | null> {
    let reply: LookupValues
    try {
      if (this.batch) reply = await this.batch.lookup(this.keys.token(hash))
      else {
        reply = await this.redis.hmget(this.keys.token(hash), ...LOOKUP_FIELDS)
        const user = reply[USER_AT]
        if (user) reply.push(...(await this.redis.hmget(this.keys.user(user), ...USER_LOOKUP_FIELDS)))
      }
    } catch (err) {
      throw this.fail(err)
    }
    // A missing record is all nils; a malformed one fails closed (fromLookup returns null).
    const record = fromLookup(reply)
    const n = LOOKUP_FIELDS.length
    return record && foldUser(record, reply[n] ?? null, reply[n + 1] ?? null)
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
