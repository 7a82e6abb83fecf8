// tokengate on a real local Redis Sentinel setup (master, replica, three sentinels): the TokenStore
// conformance suite, a gate that sees revocations at once and survives an outage of the data
// nodes, the token CLI, and a failover survived without restart.
import t from 'tap'
import { admin } from '../helpers/gate.js'
import { startRedisSentinel } from '../helpers/redis-sentinel.js'
import { eventuallyStatus, gateStatus, runTopologySuite, startCachingGate } from '../helpers/topology.js'

const sentinel = await startRedisSentinel()
t.teardown(sentinel.stop)

runTopologySuite(t, { ...sentinel, name: 'sentinel', section: sentinel.config })

t.test('after a failover, lookups and invalidations work again without restart', async (t) => {
  const g = await startCachingGate(t, sentinel.config)
  const tokens = admin(sentinel.client)
  const before = await tokens.create({ kind: 'album', album: 'F', perms: 'read', expiresIn: '1h' })
  t.equal(await gateStatus(g, before.token), 200, 'cached before the failover')

  const { from, to } = await sentinel.failover()
  t.not(to, from, `master moved from ${from} to ${to}`)
  // The old master would still serve reads as a replica: stop it, so only the new master answers.
  await sentinel.killNode(from)

  const after = await tokens.create({ kind: 'album', album: 'F', perms: 'read', expiresIn: '1h' })
  t.equal(
    await eventuallyStatus(g, after.token, 200),
    200,
    'an uncached token is looked up on the new master',
  )
  await tokens.revoke(before.id)
  t.equal(
    await eventuallyStatus(g, before.token, 401),
    401,
    'a revocation on the new master reaches the gate',
  )
  await tokens.revoke(after.id)
  t.equal(await eventuallyStatus(g, after.token, 401), 401)
})
