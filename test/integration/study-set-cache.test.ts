// The cache decorator's study sets (scoping: studies) over a real redis-server: concurrent misses
// share one Redis read, `album:<id>` and `user:<id>` invalidations drop exactly the sets they
// name, and the memory bound counts UIDs, so a set larger than the budget is never held.
import t from 'tap'
import { cached } from '../../src/token/cache.js'
import { makeKeys } from '../../src/token/keys.js'
import { RedisTokenStore } from '../../src/token/redis-store.js'
import type { TokenStore } from '../../src/token/store.js'
import { StudySets } from '../../src/token/study-sets.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(redis.stop)
const keys = makeKeys('tg:')
const sets = new StudySets(redis.client, keys)

/** The real store, counting the set reads that reach Redis. */
function counting(): { store: TokenStore; reads: string[] } {
  const inner = new RedisTokenStore(redis.client, keys)
  const reads: string[] = []
  const store: TokenStore = {
    lookup: (h) => inner.lookup(h),
    isAlbumMember: (u, a) => inner.isAlbumMember(u, a),
    albumStudies: (a) => {
      reads.push(`album:${a}`)
      return inner.albumStudies(a)
    },
    inboxStudies: (u) => {
      reads.push(`inbox:${u}`)
      return inner.inboxStudies(u)
    },
    userAlbums: (u) => {
      reads.push(`albums:${u}`)
      return inner.userAlbums(u)
    },
    ping: () => inner.ping(),
    close: async () => {},
  }
  return { store, reads }
}

const uids = (n: number, base: string) => Array.from({ length: n }, (_, i) => `${base}.${i + 1}`)

t.test('ten concurrent requests for an uncached album read Redis once', async (t) => {
  await sets.add({ kind: 'album', album: 'big' }, uids(10_000, '1.2.840.1'))
  const { store, reads } = counting()
  const cache = cached(store, { max: 100, ttl: 60_000, negativeTtl: 1000 })
  const answers = await Promise.all(Array.from({ length: 10 }, () => cache.albumStudies('big')))
  t.equal(reads.length, 1)
  t.ok(answers.every((a) => a === answers[0] && a.size === 10_000))
  await cache.albumStudies('big')
  t.equal(reads.length, 1, 'the next request is a hit')
})

t.test('album:<id> drops that album only; user:<id> drops the inbox and the album list', async (t) => {
  await sets.add({ kind: 'album', album: 'a1' }, ['1.1'])
  await sets.add({ kind: 'album', album: 'a2' }, ['2.1'])
  await sets.add({ kind: 'inbox', user: 'u1' }, ['3.1'])
  await redis.client.sadd(keys.userAlbums('u1'), 'a1')
  const { store, reads } = counting()
  const cache = cached(store, { max: 100, ttl: 60_000, negativeTtl: 1000 })
  const readAll = () =>
    Promise.all([
      cache.albumStudies('a1'),
      cache.albumStudies('a2'),
      cache.inboxStudies('u1'),
      cache.userAlbums('u1'),
    ])
  await readAll()
  t.equal(reads.length, 4)
  cache.evict({ kind: 'album', album: 'a1' })
  await readAll()
  t.same(reads.slice(4), ['album:a1'])
  cache.evict({ kind: 'user', user: 'u1' })
  await readAll()
  t.same(reads.slice(5).sort(), ['albums:u1', 'inbox:u1'])
})

t.test('the memory bound counts UIDs: a set larger than the budget is read each time', async (t) => {
  await sets.add({ kind: 'album', album: 'small' }, uids(10, '1.2.840.2'))
  const { store, reads } = counting()
  const cache = cached(store, { max: 100, ttl: 60_000, negativeTtl: 1000, studyUids: 5_000 })
  await cache.albumStudies('small')
  await cache.albumStudies('small')
  t.equal(reads.filter((r) => r === 'album:small').length, 1, 'a small set is held')
  t.equal((await cache.albumStudies('big')).size, 10_000)
  t.equal((await cache.albumStudies('big')).size, 10_000)
  t.equal(
    reads.filter((r) => r === 'album:big').length,
    2,
    'a 10,000-study set over a 5,000-UID budget is not',
  )
})

t.test('an invalidation during a read keeps the older answer out of the cache', async (t) => {
  const { store, reads } = counting()
  const cache = cached(store, { max: 100, ttl: 60_000, negativeTtl: 1000 })
  const pending = cache.albumStudies('a2')
  cache.evict({ kind: 'album', album: 'a2' })
  await pending
  await cache.albumStudies('a2')
  t.equal(reads.filter((r) => r === 'album:a2').length, 2)
})
