// The TokenStore conformance suite on a single-node redis-server: the Redis store alone, and the
// cache decorator over it (which must behave the same, apart from speed).
import t from 'tap'
import { cached } from '../../src/token/cache.js'
import { makeKeys } from '../../src/token/keys.js'
import { connectRedis } from '../../src/token/redis-client.js'
import { RedisTokenStore } from '../../src/token/redis-store.js'
import { StudySets } from '../../src/token/study-sets.js'
import { runTokenStoreSuite, type StoreFixture } from '../conformance/token-store.js'
import { admin } from '../helpers/gate.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(redis.stop)

function fixture(wrap: (s: RedisTokenStore) => StoreFixture['store']): () => Promise<StoreFixture> {
  return async () => {
    const client = connectRedis({
      url: redis.url,
      keyPrefix: 'tg:',
      commandTimeout: 500,
      connectTimeout: 500,
    })
    client.on('error', () => {})
    await new Promise((r) => client.once('ready', r))
    return {
      store: wrap(new RedisTokenStore(client, makeKeys('tg:'))),
      admin: admin(redis.client),
      keyPrefix: 'tg:',
      writeRaw: async (key, fields) => {
        await redis.client.hset(key, fields)
      },
      addStudies: async (album, uids) => {
        await redis.client.sadd(`tg:album:${album}:studies`, ...uids)
      },
      studySets: new StudySets(redis.client, makeKeys('tg:')),
      outage: async () => {
        await redis.kill()
        return () => redis.restart()
      },
    }
  }
}

runTokenStoreSuite(
  t,
  'redis store',
  fixture((s) => s),
)
// The cache must not hide revocation: the suite's revoke/disable case has no subscriber here, so
// a TTL of 0 would be cheating; a short TTL stands in for the invalidation the app wires up.
runTokenStoreSuite(
  t,
  'cached redis store',
  fixture((s) => cached(s, { max: 1000, ttl: 1, negativeTtl: 1 })),
)
