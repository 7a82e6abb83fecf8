// tokengate on a real local Redis Cluster (three masters): the TokenStore conformance suite, a gate
// that sees revocations at once and survives every node going down, and the token CLI — whose
// operations touch keys in many slots, so any multi-key command would fail with CROSSSLOT.
import t from 'tap'
import { hashSecret } from '../../src/credential/secret.js'
import { makeKeys } from '../../src/token/keys.js'
import { recordLastUsed } from '../../src/token/last-used.js'
import { admin } from '../helpers/gate.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import { probe, waitFor } from '../helpers/redis-process.js'
import { eventuallyStatus, runTopologySuite, startCachingGate } from '../helpers/topology.js'

const cluster = await startRedisCluster()
t.teardown(cluster.stop)

runTopologySuite(t, { ...cluster, name: 'cluster', section: cluster.config })

t.test('one listing reads tokens whose keys live on different masters', async (t) => {
  const tokens = admin(cluster.client)
  /** The master serving `key` (its slot's owner). */
  const slots = await cluster.client.cluster('SLOTS')
  const ownerOf = async (key: string) => {
    const slot = Number(await cluster.client.cluster('KEYSLOT', key))
    return slots.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1]
  }
  const owners = new Set<number | undefined>()
  const ids: string[] = []
  // Ids are random: create until their id keys sit on at least two masters.
  while (owners.size < 2 && ids.length < 50) {
    const { id } = await tokens.create({ kind: 'album', album: 'SPREAD', perms: 'read', expiresIn: '1h' })
    ids.push(id)
    owners.add(await ownerOf(`tg:id:${id}`))
  }
  t.ok(owners.size >= 2, `${ids.length} tokens on ${owners.size} masters`)
  const listed = await tokens.list({ album: 'SPREAD' })
  t.same(listed.map((i) => i.id).sort(), ids.sort())
})

t.test(
  "when the invalidation subscriber's node stops, it moves to another node and clears the cache",
  async (t) => {
    const g = await startCachingGate(t, cluster.config)
    // PUBSUB NUMSUB counts a node's own subscribers: the gate's is the only one.
    const subscribersOn = (node: string) =>
      probe(Number(node.split(':')[1]), async (r) =>
        Number(((await r.pubsub('NUMSUB', 'tg:events')) as [string, number])[1]),
      )
    const home = await waitFor('the gate to subscribe', async () => {
      for (const node of cluster.nodes) if ((await subscribersOn(node)) === 1) return node
      return undefined
    })
    await cluster.killNode(home)
    t.teardown(() => cluster.restartNode(home))
    const others = cluster.nodes.filter((n) => n !== home)
    const moved = await waitFor('the subscriber on another node', async () => {
      for (const node of others) if ((await subscribersOn(node)) === 1) return node
      return undefined
    })
    t.not(moved, home, `moved from ${home} to ${moved}`)
    await waitFor('the resubscription to be logged', async () =>
      g.logs.some((l) => l.includes('invalidation channel reconnected')),
    )
    t.pass('the cache was cleared on resubscription')
    await cluster.restartNode(home)
    const tokens = admin(cluster.client)
    const a = await tokens.create({ kind: 'album', album: 'MOVE', perms: 'read', expiresIn: '1h' })
    t.equal(await eventuallyStatus(g, a.token, 200), 200)
    await tokens.revoke(a.id)
    t.equal(await eventuallyStatus(g, a.token, 401), 401, 'invalidations reach the gate through its new node')
  },
)

t.test('last used and last refused are written on Cluster, in steps over tokens in many slots', async (t) => {
  const tokens = admin(cluster.client)
  const made = []
  for (let i = 0; i < 250; i++)
    made.push(await tokens.create({ kind: 'album', album: 'USED', perms: 'read', expiresIn: '1h' }))
  const revoked = made[0] as (typeof made)[number]
  await tokens.revoke(revoked.id)
  const errors: unknown[] = []
  const recorder = recordLastUsed(cluster.client, makeKeys('tg:'), {
    intervalMs: 3_600_000,
    onError: (err) => errors.push(err),
  })
  const at = Date.now()
  for (const [i, m] of made.entries()) recorder.seen(hashSecret(m.token), at + i)
  recorder.refused(hashSecret(revoked.token), at + 1000, 'revoked')
  await recorder.close()
  t.same(errors, [], 'no step failed')
  const listed = await tokens.list({ album: 'USED' })
  t.equal(listed.length, 250)
  t.ok(
    made.every((m, i) => listed.find((x) => x.id === m.id)?.lastUsedAt === new Date(at + i).toISOString()),
    'every token has its own time, across two steps of at most 200',
  )
  const shown = await tokens.show(revoked.id)
  t.equal(shown?.lastRefusedAt, new Date(at + 1000).toISOString())
  t.equal(shown?.lastRefusedReason, 'revoked')
})
