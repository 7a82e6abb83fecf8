// The token cache (token/cache.ts) alone, over a scripted store whose every answer the test
// releases by hand, and an injected clock: the races of single-flight and invalidation (a revoke
// arriving during a lookup, a lookup during a reconnection, a reload during an outage) and the
// TTLs, each in a fixed order of events, with no Redis, no sockets and no timers.
import t from 'tap'
import { type CachedTokenStore, type CacheOptions, cached } from '../../../src/token/cache.js'
import type { TokenHash, TokenRecord } from '../../../src/token/record.js'
import type { TokenStore } from '../../../src/token/store.js'
import { tokenRecord } from '../../helpers/records.js'

interface Pending<T> {
  resolve(value: T): void
  reject(err: Error): void
}

/** A store whose answers wait for the test: each call is queued until released. */
class ScriptedStore implements TokenStore {
  readonly lookups: { hash: TokenHash; answer: Pending<TokenRecord | null> }[] = []
  readonly sets: { key: string; answer: Pending<ReadonlySet<string>> }[] = []

  lookup(hash: TokenHash): Promise<TokenRecord | null> {
    return new Promise((resolve, reject) => this.lookups.push({ hash, answer: { resolve, reject } }))
  }
  /** Release the oldest unanswered lookup. */
  answer(value: TokenRecord | null | Error): void {
    const next = this.lookups.shift()
    if (!next) throw new Error('no lookup is waiting')
    if (value instanceof Error) next.answer.reject(value)
    else next.answer.resolve(value)
  }
  albumStudies(album: string): Promise<ReadonlySet<string>> {
    return new Promise((resolve, reject) =>
      this.sets.push({ key: `album:${album}`, answer: { resolve, reject } }),
    )
  }
  isAlbumMember(): Promise<boolean> {
    return Promise.resolve(true)
  }
  inboxStudies(): Promise<ReadonlySet<string>> {
    return Promise.resolve(new Set())
  }
  userAlbums(): Promise<readonly string[]> {
    return Promise.resolve([])
  }
  ping(): Promise<void> {
    return Promise.resolve()
  }
  close(): Promise<void> {
    return Promise.resolve()
  }
}

const HASH = 'a'.repeat(64) as TokenHash
const OTHER = 'b'.repeat(64) as TokenHash

const record = tokenRecord

/** A cache over a fresh scripted store, with a clock the test moves. */
function setup(opts: Partial<CacheOptions> = {}): {
  store: ScriptedStore
  cache: CachedTokenStore
  clock: { now: number }
} {
  const store = new ScriptedStore()
  const clock = { now: 1_000 }
  const cache = cached(store, { max: 100, ttl: 30_000, negativeTtl: 5_000, clock: () => clock.now, ...opts })
  return { store, cache, clock }
}

/** Let promise callbacks run (the store's answer reaching the cache). */
const settle = () => new Promise((r) => setImmediate(r))

t.test('concurrent misses for one token share one store call, and the answer is then a hit', async (t) => {
  const { store, cache } = setup()
  const answers = Promise.all([cache.lookup(HASH), cache.lookup(HASH), cache.lookup(HASH)])
  t.equal(store.lookups.length, 1, 'one store call for three lookups')
  store.answer(record())
  t.same(
    (await answers).map((r) => r?.id),
    ['tok_1', 'tok_1', 'tok_1'],
  )
  t.equal((await cache.lookup(HASH))?.id, 'tok_1')
  t.equal(store.lookups.length, 0, 'served from the cache')
  t.same({ hits: cache.stats.hits, misses: cache.stats.misses }, { hits: 1, misses: 3 })
})

t.test(
  'a revoke arriving during a lookup: the older answer is not cached, and later lookups do not join it',
  async (t) => {
    const { store, cache } = setup()
    const before = cache.lookup(HASH)
    cache.evict({ kind: 'token', hash: HASH })
    const after = cache.lookup(HASH)
    t.equal(store.lookups.length, 2, 'the lookup after the revoke asks the store again')
    store.answer(record()) // read before the revoke
    store.answer(record({ revokedAt: 5 })) // read after it
    t.equal((await before)?.revokedAt, 0, 'the earlier caller gets what was read for it')
    t.equal((await after)?.revokedAt, 5, 'the later caller sees the revoke')
    t.equal((await cache.lookup(HASH))?.revokedAt, 5, 'the cache holds the answer read after the revoke')
    t.equal(store.lookups.length, 0)
  },
)

t.test('a revoke during a lookup whose answer comes last still leaves nothing stale cached', async (t) => {
  const { store, cache } = setup()
  const before = cache.lookup(HASH)
  cache.evict({ kind: 'token', hash: HASH })
  const after = cache.lookup(HASH)
  // The answers come back in the other order: the stale one last.
  const [stale, fresh] = [store.lookups[0], store.lookups[1]]
  fresh?.answer.resolve(record({ revokedAt: 5 }))
  await settle()
  stale?.answer.resolve(record())
  await Promise.all([before, after])
  store.lookups.length = 0
  t.equal((await cache.lookup(HASH))?.revokedAt, 5, 'the stale answer did not overwrite the fresh one')
})

t.test('a user revoke drops every cached token of that user, and no other', async (t) => {
  const { store, cache } = setup()
  const a = cache.lookup(HASH)
  const b = cache.lookup(OTHER)
  store.answer(record({ user: 'u1' }))
  store.answer(record({ id: 'tok_2', user: 'u2' }))
  await Promise.all([a, b])
  cache.evict({ kind: 'user', user: 'u1' })
  t.equal(cache.peek(HASH), undefined, "u1's token is gone")
  t.equal(cache.peek(OTHER)?.id, 'tok_2', "u2's stays")
})

t.test(
  'a lookup during a reconnection: what was read before the channel came back is not cached',
  async (t) => {
    const { store, cache } = setup()
    cache.suspend() // the channel dropped
    const during = cache.lookup(HASH)
    // The channel is back: the app clears (messages may have been missed) and trusts again.
    cache.clear()
    cache.resume()
    store.answer(record())
    t.equal((await during)?.id, 'tok_1', 'the caller is answered')
    const next = cache.lookup(HASH)
    t.equal(store.lookups.length, 1, 'the answer read before the clear was not kept')
    store.answer(record({ revokedAt: 9 }))
    t.equal((await next)?.revokedAt, 9)
  },
)

t.test(
  'while the channel is down every lookup asks the store; a held record is served only if it fails',
  async (t) => {
    const { store, cache } = setup()
    const first = cache.lookup(HASH)
    store.answer(record())
    await first
    cache.suspend()
    t.equal(cache.peek(HASH), undefined, 'no answer without asking the store')
    const asked = cache.lookup(HASH)
    t.equal(store.lookups.length, 1, 'the store is asked although the record is held')
    store.answer(record({ revokedAt: 3 }))
    t.equal((await asked)?.revokedAt, 3, 'a revoke the channel missed counts')
    const outage = cache.lookup(HASH)
    store.answer(new Error('redis down'))
    t.equal(
      (await outage)?.revokedAt,
      3,
      'the store failed: the held record is served (the policy refuses it)',
    )
    t.equal(cache.stats.outageHits, 1)
    const unknown = cache.lookup(OTHER)
    store.answer(new Error('redis down'))
    await t.rejects(unknown, /redis down/, 'nothing held: the failure stands (503), never a pass')
  },
)

t.test('a cache built during an outage (a reload) trusts nothing until the channel is back', async (t) => {
  const { store, cache } = setup({ trusted: false })
  for (let i = 0; i < 3; i++) {
    const answer = cache.lookup(HASH)
    store.answer(record())
    await answer
  }
  t.equal(cache.stats.misses, 3, 'each lookup asked the store')
  t.equal(cache.peek(HASH), undefined)
  cache.clear()
  cache.resume()
  const again = cache.lookup(HASH)
  store.answer(record())
  await again
  t.equal(cache.peek(HASH)?.id, 'tok_1', 'once the channel is live, answers are cached again')
})

t.test('entries live ttl on the injected clock; unknown tokens negativeTtl', async (t) => {
  const { store, cache, clock } = setup({ ttl: 30_000, negativeTtl: 5_000 })
  const known = cache.lookup(HASH)
  const unknown = cache.lookup(OTHER)
  store.answer(record())
  store.answer(null)
  await Promise.all([known, unknown])
  clock.now += 5_000
  t.equal(cache.peek(OTHER), null, 'unknown, still remembered at negativeTtl')
  clock.now += 1
  t.equal(cache.peek(OTHER), undefined, 'forgotten past negativeTtl')
  clock.now += 24_999
  t.equal(cache.peek(HASH)?.id, 'tok_1', 'held at ttl')
  clock.now += 1
  t.equal(cache.peek(HASH), undefined, 'gone past ttl')
})

t.test(
  'staleIfError: past ttl a record is a miss, served only while the store fails, up to staleIfError',
  async (t) => {
    const { store, cache, clock } = setup({ ttl: 1_000, staleIfError: 60_000 })
    const first = cache.lookup(HASH)
    store.answer(record())
    await first
    clock.now += 1_000
    t.equal(cache.peek(HASH), undefined, 'past ttl: not served without asking')
    const failing = cache.lookup(HASH)
    store.answer(new Error('redis down'))
    t.equal((await failing)?.id, 'tok_1', 'the store failed: served stale')
    clock.now += 60_001
    const late = cache.lookup(HASH)
    store.answer(new Error('redis down'))
    await t.rejects(late, /redis down/, 'past ttl + staleIfError: no longer held')
  },
)

t.test('an album change during a study-set read: the set read before it is not cached', async (t) => {
  const { store, cache } = setup()
  const before = cache.albumStudies('A')
  cache.evict({ kind: 'album', album: 'A' })
  const after = cache.albumStudies('A')
  t.equal(store.sets.length, 2, 'the read after the change does not join the one before')
  store.sets[0]?.answer.resolve(new Set(['1']))
  store.sets[1]?.answer.resolve(new Set(['1', '2']))
  t.same([...(await before)], ['1'])
  t.same([...(await after)], ['1', '2'])
  store.sets.length = 0
  t.same([...(await cache.albumStudies('A'))], ['1', '2'], 'the newer set is the one cached')
  t.equal(store.sets.length, 0)
})

t.test('max: 0 caches nothing: every lookup asks the store', async (t) => {
  const { store, cache } = setup({ max: 0 })
  for (let i = 0; i < 2; i++) {
    const answer = cache.lookup(HASH)
    store.answer(record())
    await answer
  }
  t.equal(cache.stats.misses, 2)
  t.equal(cache.size(), 0)
})
