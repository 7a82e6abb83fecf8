// Token lookup, hot path: an in-process LRU (lru-cache) in front of the Redis store. A hit costs a
// map lookup and no promise (`peek`); misses for the same key share one Redis call (single-flight);
// unknown tokens are remembered for `negativeTtl` so garbage cannot flood Redis; every entry
// lives at most `ttl`, the safety net behind pub/sub invalidation (token/invalidation.ts).
// An invalidation that arrives while a lookup is in flight wins: the older answer is not cached.
// While the invalidation channel is down (suspend() … resume()), cached answers are not trusted:
// every lookup asks Redis, and only if Redis fails too is a cached record served (a full outage:
// DESIGN's "cached tokens still pass"). With `staleIfError`, a record past `ttl` is kept that much
// longer for the same fallback (the policy still refuses it past its expiresAt).
import { LRUCache } from 'lru-cache'
import type { EvictKey } from './keys.js'
import type { TokenHash, TokenRecord } from './record.js'
import type { TokenStore } from './store.js'

export interface CacheOptions {
  /** Most token records kept; 0 disables caching (every lookup asks the store). */
  max: number
  /** Milliseconds an entry may be served. */
  ttl: number
  /** Milliseconds an unknown token is remembered as unknown. */
  negativeTtl: number
  /** Milliseconds past `ttl` a record may be served while the store fails; 0 = never. */
  staleIfError?: number
  /** Most StudyInstanceUIDs held across all cached study sets (scoping: studies); 0 caches none. */
  studyUids?: number
  /** Counters to add to (kept across a cache rebuilt on reload); a new set when absent. */
  stats?: CacheStats
  /**
   * Whether cached answers may be served at once (the invalidation channel is live). False starts
   * the cache suspended until resume(): a cache built while the channel is down must not trust
   * what it learns meanwhile. Default true.
   */
  trusted?: boolean
  /** Monotonic milliseconds for TTLs (default performance.now); tests inject one. */
  clock?: () => number
}

/** Counters read by the metrics registry (plain numbers: cheap to bump on the hot path). */
export interface CacheStats {
  hits: number
  negativeHits: number
  misses: number
  /** Entries dropped to make room (capacity), not by invalidation or TTL. */
  evictions: number
  /** Invalidation messages applied. */
  invalidations: number
  /** Records served from the cache because the store failed (an outage; past ttl with staleIfError). */
  outageHits: number
}

export interface CachedTokenStore extends TokenStore {
  /**
   * The cached answer for a token without any I/O: the record, null (known unknown), or
   * undefined when not cached. Counts a hit or negative hit; a miss is counted by lookup().
   */
  peek(hash: TokenHash): TokenRecord | null | undefined
  /** Apply an invalidation: a token, everything about a user, or an album. */
  evict(key: EvictKey): void
  /** Forget everything (invalidations may have been missed). */
  clear(): void
  /** The invalidation channel is down: stop trusting cached answers (ask Redis; fall back only if it fails). */
  suspend(): void
  /** The channel is live again (call after clear()): trust the cache again. */
  resume(): void
  /** Records currently held (positive and negative). */
  size(): number
  /** Album membership answers currently held (bounded by `max`). */
  membershipSize(): number
  readonly stats: CacheStats
}

/** lru-cache cannot hold null: one shared object stands for "no such token". */
const UNKNOWN = Object.freeze({ unknown: true })
/** With staleIfError, records carry when they stop being fresh (in `clock` time). */
interface Aging {
  record: TokenRecord
  freshUntil: number
}
type Entry = TokenRecord | Aging | typeof UNKNOWN

/** Study sets held when `studyUids` is not given (about 100 MB of UIDs at most). */
const DEFAULT_STUDY_UIDS = 1_000_000

export function newCacheStats(): CacheStats {
  return { hits: 0, negativeHits: 0, misses: 0, evictions: 0, invalidations: 0, outageHits: 0 }
}

function recordOf(entry: TokenRecord | Aging): TokenRecord {
  return 'freshUntil' in entry ? entry.record : entry
}

export function cached(inner: TokenStore, opts: CacheOptions): CachedTokenStore {
  const enabled = opts.max > 0
  const stats: CacheStats = opts.stats ?? newCacheStats()
  const stale = enabled && (opts.staleIfError ?? 0) > 0
  const clock = opts.clock ?? (() => performance.now())
  // lru-cache reads the same clock; an injected one is read at every check (no 1 ms caching timer).
  const timing = opts.clock ? { perf: { now: opts.clock }, ttlResolution: 0 } : {}
  const countEviction = (_v: unknown, _k: unknown, reason: LRUCache.DisposeReason) => {
    if (reason === 'evict') stats.evictions++
  }
  const records = enabled
    ? new LRUCache<TokenHash, Entry>({
        max: opts.max,
        ttl: stale ? opts.ttl + (opts.staleIfError ?? 0) : opts.ttl,
        disposeAfter: countEviction,
        ...timing,
      })
    : null
  // `<user>\n<album>` → member?, one LRU over every user: bounded in count (and, ids being at
  // most 128 bytes each (token/ids.ts), in bytes). A user → (album → member?) map once grew
  // without bound under one token asking for distinct albums.
  const membership = enabled
    ? new LRUCache<string, boolean>({ max: opts.max, ttl: opts.ttl, ...timing })
    : null
  const memberKey = (user: string, album: string) => `${user}\n${album}`
  // Study sets (`album:<id>` / `inbox:<user>`) and users' album lists, bounded by the number of
  // UIDs they hold rather than by count: one 10,000-study album weighs as much as 10,000 small
  // ones. A set larger than the whole budget is not cached (each request reads it, single-flight).
  const studyUids = opts.studyUids ?? DEFAULT_STUDY_UIDS
  const sets =
    enabled && studyUids > 0
      ? new LRUCache<string, ReadonlySet<string> | readonly string[]>({
          maxSize: studyUids,
          sizeCalculation: (v) => ('size' in v ? v.size : v.length) || 1,
          ttl: opts.ttl,
          ...timing,
        })
      : null
  const inflightSets = new Map<string, Promise<ReadonlySet<string> | readonly string[]>>()

  const inflight = new Map<TokenHash, Promise<TokenRecord | null>>()
  // Bumped by every invalidation: an answer fetched before it is handed out but not cached.
  let generation = 0
  // False while invalidations cannot reach us: then a cached answer may be stale.
  let confirmed = opts.trusted ?? true

  function invalidateInflight(): void {
    generation++
    inflight.clear()
    inflightSets.clear()
  }

  /** A cached set-valued answer under `key`; concurrent misses share one store call. */
  function cachedSet<T extends ReadonlySet<string> | readonly string[]>(
    key: string,
    read: () => Promise<T>,
  ): Promise<T> {
    const known = sets?.get(key)
    if (known && confirmed) return Promise.resolve(known as T)
    const pending = inflightSets.get(key)
    if (pending) return pending as Promise<T>
    const gen = generation
    const fetch = read().then(
      (value) => {
        if (inflightSets.get(key) === fetch) inflightSets.delete(key)
        if (sets && gen === generation) sets.set(key, value)
        return value
      },
      (err: unknown) => {
        if (inflightSets.get(key) === fetch) inflightSets.delete(key)
        if (known) return known as T // an outage: the last set heard
        throw err
      },
    )
    inflightSets.set(key, fetch)
    return fetch
  }

  return {
    stats,

    peek(hash) {
      if (!confirmed) return undefined
      const entry = records?.get(hash)
      if (entry === undefined) return undefined
      if (entry === UNKNOWN) {
        stats.negativeHits++
        return null
      }
      if (stale) {
        const aging = entry as Aging
        // Past its TTL: a miss (ask Redis), kept only as a fallback should Redis fail.
        if (aging.freshUntil <= clock()) return undefined
        stats.hits++
        return aging.record
      }
      stats.hits++
      return entry as TokenRecord
    },

    lookup(hash) {
      const entry = this.peek(hash)
      if (entry !== undefined) return Promise.resolve(entry)
      stats.misses++
      const pending = inflight.get(hash)
      if (pending) return pending
      const gen = generation
      const fetch = inner.lookup(hash).then(
        (record) => {
          if (inflight.get(hash) === fetch) inflight.delete(hash)
          if (records && gen === generation) {
            if (!record) records.set(hash, UNKNOWN, { ttl: opts.negativeTtl })
            else records.set(hash, stale ? { record, freshUntil: clock() + opts.ttl } : record)
          }
          return record
        },
        (err: unknown) => {
          if (inflight.get(hash) === fetch) inflight.delete(hash)
          // Redis failed: a record still held (fresh, or within staleIfError) is served.
          const kept = records?.get(hash)
          if (kept !== undefined && kept !== UNKNOWN) {
            stats.outageHits++
            return recordOf(kept as TokenRecord | Aging)
          }
          throw err
        },
      )
      inflight.set(hash, fetch)
      return fetch
    },

    async isAlbumMember(user, album) {
      const key = memberKey(user, album)
      const known = membership?.get(key)
      if (known !== undefined && confirmed) return known
      const gen = generation
      let member: boolean
      try {
        member = await inner.isAlbumMember(user, album)
      } catch (err) {
        if (known === undefined) throw err
        return known // an outage: the last answer heard
      }
      if (membership && gen === generation) membership.set(key, member)
      return member
    },

    albumStudies(album) {
      return cachedSet(`album:${album}`, () => inner.albumStudies(album))
    },

    inboxStudies(user) {
      return cachedSet(`inbox:${user}`, () => inner.inboxStudies(user))
    },

    userAlbums(user) {
      return cachedSet(`albums:${user}`, () => inner.userAlbums(user))
    },

    evict(key) {
      stats.invalidations++
      invalidateInflight()
      switch (key.kind) {
        case 'token':
          records?.delete(key.hash)
          return
        case 'user':
          // Rare (a membership change): a scan of the answers is fine.
          if (membership) {
            const prefix = `${key.user}\n`
            for (const k of [...membership.keys()]) if (k.startsWith(prefix)) membership.delete(k)
          }
          sets?.delete(`inbox:${key.user}`)
          sets?.delete(`albums:${key.user}`)
          // Rare (a user's tokens revoked, membership changed): a scan of the cache is fine.
          if (records) {
            for (const [hash, entry] of records.entries()) {
              if (entry !== UNKNOWN && recordOf(entry as TokenRecord | Aging).user === key.user)
                records.delete(hash)
            }
          }
          return
        case 'album':
          sets?.delete(`album:${key.album}`)
          if (membership) {
            const suffix = `\n${key.album}`
            for (const k of [...membership.keys()]) if (k.endsWith(suffix)) membership.delete(k)
          }
          return
      }
    },

    suspend() {
      confirmed = false
    },

    resume() {
      confirmed = true
    },

    clear() {
      invalidateInflight()
      records?.clear()
      membership?.clear()
      sets?.clear()
    },

    size() {
      return records?.size ?? 0
    },

    membershipSize() {
      return membership?.size ?? 0
    },

    ping: () => inner.ping(),
    close: () => inner.close(),
  }
}
