// The TokenStore conformance suite on a single-node redis-server: the Redis store alone, and the
// cache decorator over it (which must behave the same, apart from speed).
import t from 'tap'
import { cached } from '../../src/token/cache.js'
import { runTokenStoreSuite } from '../conformance/token-store.js'
import { startRedis } from '../helpers/redis.js'
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
