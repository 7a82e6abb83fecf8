// TLS to Redis Cluster (issue 17.4): three masters that speak TLS only, to clients and on the
// cluster bus, and require a client certificate from a private CA. tokengate reads the slot map,
// looks tokens up on every master and hears revocations (its subscriber on one node) over TLS
// with `redis.tls`; without the client certificate requests fail closed.
import t from 'tap'
import { hashSecret } from '../../src/credential/secret.js'
import { makeKeys } from '../../src/token/keys.js'
import { makePki } from '../helpers/certs.js'
import { admin, startGate } from '../helpers/gate.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import { redisTlsChecks } from '../helpers/redis-tls.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const pki = makePki()
t.teardown(pki.remove)
// The nodes serve with it and present it to their peers on the cluster bus.
const node = pki.issue('redis-node', { client: true, server: true })
const client = pki.issue('tokengate', { client: true })
const cluster = await startRedisCluster(3, { tls: { ca: pki.ca, cert: node.cert, key: node.key } })
t.teardown(cluster.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const tokens = admin(cluster.client)
const keys = makeKeys('tg:')

t.test('tokens whose records sit on each of the three masters are looked up over TLS', async (t) => {
  const tls = { ca: pki.ca, cert: client.cert, key: client.key }
  const gate = await startGate({ redis: { ...cluster.config, tls }, upstream: upstream.url })
  t.teardown(gate.stop)
  // Records are keyed by their secret's hash: create until they sit on all three masters.
  const slots = await cluster.client.cluster('SLOTS')
  const ownerOf = async (key: string) => {
    const slot = Number(await cluster.client.cluster('KEYSLOT', key))
    return slots.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1]
  }
  const owners = new Set<number | undefined>()
  const made: { token: string; id: string }[] = []
  while (owners.size < 3 && made.length < 60) {
    const created = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    made.push(created)
    owners.add(await ownerOf(keys.token(hashSecret(created.token))))
  }
  t.equal(owners.size, 3, `${made.length} token records on every master`)
  const get = (token: string) =>
    fetch(`${gate.url}/api/studies`, { headers: { authorization: `Bearer ${token}` } })
  const statuses = await Promise.all(made.map(async ({ token }) => (await get(token)).status))
  t.ok(
    statuses.every((s) => s === 200),
    'every one looked up over TLS',
  )
})

redisTlsChecks(t, { redis: cluster.config, ca: pki.ca, client, tokens, upstream })
