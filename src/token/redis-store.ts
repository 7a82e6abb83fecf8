// Token lookup, Redis side: the TokenStore over an ioredis client. One command per question
// (SISMEMBER for membership, SMEMBERS for a user's albums and for the study sets of an album or
// inbox). A token lookup also reads the token's user record (status, validUntil) and folds it into
// the TokenRecord, so a deactivated user's tokens are refused from the cached record alone (no
// Redis call on a cache hit): one script round trip on a single node or Sentinel; on Cluster,
// where the two keys live in different slots, two HMGETs. A lookup reads the fields the gate
// decides with (record.ts LOOKUP_FIELDS), not the whole hash: in Redis, a script's cost is mostly
// converting replies to Lua and back, per string (bench/lookup.js). Any Redis failure becomes
// StoreUnavailable: the pipeline answers 503 and never lets an unverified token through.
import { createHash } from 'node:crypto'
import { Cluster, type Redis } from 'ioredis'
import { StoreUnavailable } from '../errors.js'
import type { Keys } from './keys.js'
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

// The token's lookup fields and, when it names a user, that user's lookup fields after them, in
// one round trip and one flat reply. The user key is built in the script (single node / Sentinel
// only: on Cluster it may live elsewhere). A missing user record answers nils, read as "no
// record" (active, no validity end); so does a token without a user (the reply stops short).
const quoted = (names: readonly string[]) => names.map((n) => `'${n}'`).join(', ')
const USER_AT = LOOKUP_FIELDS.indexOf('user') + 1
const LOOKUP_WITH_USER = `local t = redis.call('HMGET', KEYS[1], ${quoted(LOOKUP_FIELDS)})
local user = t[${USER_AT}]
if not user or user == '' then return t end
local u = redis.call('HMGET', ARGV[1] .. user, ${quoted(USER_LOOKUP_FIELDS)})
for i = 1, #u do t[${LOOKUP_FIELDS.length} + i] = u[i] end
return t`

const LOOKUP_SHA = createHash('sha1').update(LOOKUP_WITH_USER).digest('hex')

type LookupReply = (string | null)[]

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
    const key = this.keys.token(hash)
    const prefix = this.keys.userPrefix()
    try {
      return (await redis.evalsha(LOOKUP_SHA, 1, key, prefix)) as LookupReply
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err
      return (await redis.eval(LOOKUP_WITH_USER, 1, key, prefix)) as LookupReply
    }
  }

  private fail(err: unknown): StoreUnavailable {
    this.onCommandError()
    return storeError(err)
  }

  async lookup(hash: TokenHash): Promise<TokenRecord | null> {
    let reply: LookupReply
    try {
      if (this.redis instanceof Cluster) {
        reply = await this.redis.hmget(this.keys.token(hash), ...LOOKUP_FIELDS)
        const user = reply[USER_AT - 1]
        if (user) reply.push(...(await this.redis.hmget(this.keys.user(user), ...USER_LOOKUP_FIELDS)))
      } else {
        reply = await this.lookupScript(this.redis, hash)
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
