// Token lookup, Redis side: the TokenStore over an ioredis client. One command per question
// (HGETALL for a record, SISMEMBER for membership, SMEMBERS for a user's albums and for the study
// sets of an album or inbox), no multi-key commands, so it works unchanged on Redis Cluster. Any
// Redis failure becomes StoreUnavailable: the pipeline answers 503 and never lets an unverified
// token through.
import type { Cluster, Redis } from 'ioredis'
import { StoreUnavailable } from '../errors.js'
import type { Keys } from './keys.js'
import { fromHash, type TokenHash, type TokenRecord } from './record.js'
import { closeRedis } from './redis-client.js'
import type { TokenStore } from './store.js'

/** Map an ioredis failure to the store error (the message names no key: keys carry user ids). */
export function storeError(err: unknown): StoreUnavailable {
  const message = (err as Error)?.message ?? ''
  return new StoreUnavailable(/timed out/i.test(message) ? 'redis_timeout' : 'redis_error', message)
}

export class RedisTokenStore implements TokenStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: Keys,
    /** Told of every failed command (metrics); the error itself is thrown as StoreUnavailable. */
    private readonly onCommandError: () => void = () => {},
  ) {}

  private fail(err: unknown): StoreUnavailable {
    this.onCommandError()
    return storeError(err)
  }

  async lookup(hash: TokenHash): Promise<TokenRecord | null> {
    let fields: Record<string, string>
    try {
      fields = await this.redis.hgetall(this.keys.token(hash))
    } catch (err) {
      throw this.fail(err)
    }
    // An empty reply is no record; a malformed one fails closed (fromHash returns null).
    return fromHash(fields)
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
