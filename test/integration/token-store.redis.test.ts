// The TokenStore conformance suite on a single-node redis-server: the Redis store alone, and the
// cache decorator over it (which must behave the same, apart from speed).
import t, { type Test } from 'tap'
import { hashSecret } from '../../src/credential/secret.js'
import { cached } from '../../src/token/cache.js'
import { makeKeys } from '../../src/token/keys.js'
import { connectRedis } from '../../src/token/redis-client.js'
import { RedisTokenStore } from '../../src/token/redis-store.js'
import { runTokenStoreSuite } from '../conformance/token-store.js'
import { admin, gateConfig } from '../helpers/gate.js'
import { scriptCalls, startRedis } from '../helpers/redis.js'
import { storeFixture, type Topology } from '../helpers/topology.js'

const redis = await startRedis()
t.teardown(redis.stop)
const single: Topology = { name: 'single node', section: { url: redis.url }, ...redis }

runTokenStoreSuite(
  t,
  'redis store',
  storeFixture(single, (s) => s),
)
// The cache must not hide revocation: the suite's revoke/disable case has no subscriber here, so
// a TTL of 0 would be cheating; a short TTL stands in for the invalidation the app wires up.
runTokenStoreSuite(
  t,
  'cached redis store',
  storeFixture(single, (s) => cached(s, { max: 1000, ttl: 1, negativeTtl: 1 })),
)

/** A store on its own connection, as the app makes one, and a new token of `album`. */
async function storeAndToken(t: Test, album: string) {
  const cfg = gateConfig({ redis: { url: redis.url }, upstream: 'http://127.0.0.1:9/' })
  const client = connectRedis(cfg.redis)
  client.on('error', () => {})
  await new Promise((r) => client.once('ready', r))
  const store = new RedisTokenStore(client, makeKeys('tg:'))
  t.teardown(() => store.close())
  const { token } = await admin(redis.client).create({ kind: 'album', album, perms: 'read', expiresIn: '1h' })
  return { store, token }
}

t.test('lookups asked in one turn share one script call, at most 64 tokens each', async (t) => {
  const { store, token } = await storeAndToken(t, 'A')
  await store.lookup(hashSecret(token)) // the connection has run the script once
  const calls = () => scriptCalls(redis.client)
  await redis.client.config('RESETSTAT')
  const records = await Promise.all(Array.from({ length: 100 }, () => store.lookup(hashSecret(token))))
  t.ok(
    records.every((r) => r?.album === 'A'),
    'every lookup found the record',
  )
  t.equal(await calls(), 2, '100 lookups: two calls (64 + 36)')
  await redis.client.config('RESETSTAT')
  t.equal((await store.lookup(hashSecret(token)))?.album, 'A')
  t.equal(await calls(), 1, 'a lone lookup: one call')
})

t.test('lookups go on after Redis forgets its scripts (SCRIPT FLUSH, a restart, a failover)', async (t) => {
  const { store, token } = await storeAndToken(t, 'F')
  t.equal((await store.lookup(hashSecret(token)))?.album, 'F', 'before the flush')
  await redis.client.script('FLUSH')
  const records = await Promise.all(Array.from({ length: 10 }, () => store.lookup(hashSecret(token))))
  t.ok(
    records.every((r) => r?.album === 'F'),
    'a batch after the flush: NOSCRIPT answered by sending the script again',
  )
  t.equal((await store.lookup(hashSecret(token)))?.album, 'F', 'and the next lookup')
})
