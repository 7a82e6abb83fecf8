// TLS to Redis behind Sentinel (issue 17.4): a master, a replica and three sentinels that speak TLS
// only, to clients and to each other, and require a client certificate from a private CA.
// tokengate asks the sentinels for the master, looks tokens up and hears revocations over TLS with
// `redis.tls`; without the client certificate nothing is reached and requests fail closed.
import t from 'tap'
import { makePki } from '../helpers/certs.js'
import { admin, startGate } from '../helpers/gate.js'
import { probe, tlsClientOptions } from '../helpers/redis-process.js'
import { startRedisSentinel } from '../helpers/redis-sentinel.js'
import { redisTlsChecks } from '../helpers/redis-tls.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const pki = makePki()
t.teardown(pki.remove)
// The nodes and sentinels serve with it and present it to their peers.
const node = pki.issue('redis-node', { client: true, server: true })
const client = pki.issue('tokengate', { client: true })
const files = { ca: pki.ca, cert: node.cert, key: node.key }
const sentinel = await startRedisSentinel({ tls: files })
t.teardown(sentinel.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const tokens = admin(sentinel.client)

redisTlsChecks(t, { redis: sentinel.config, ca: pki.ca, client, tokens, upstream })

t.test('the sentinels speak TLS only, and know each other over it', async (t) => {
  const port = Number(sentinel.sentinels[0]?.split(':')[1])
  await t.rejects(
    probe(port, (r) => r.ping()),
    'a plain TCP client gets no answer',
  )
  const others = () =>
    probe(
      port,
      (r) => r.call('SENTINEL', 'SENTINELS', sentinel.name) as Promise<unknown[]>,
      tlsClientOptions(files),
    )
  await waitFor('the first sentinel to know the other two', async () => (await others()).length === 2)
  t.pass('three sentinels')
})

t.test('after a failover, tokengate follows the new master over TLS', async (t) => {
  const tls = { ca: pki.ca, cert: client.cert, key: client.key }
  const gate = await startGate({ redis: { ...sentinel.config, tls }, upstream: upstream.url })
  t.teardown(gate.stop)
  const { from, to } = await sentinel.failover()
  // The old master would still serve reads as a replica: stop it, so only the new master answers.
  await sentinel.killNode(from)
  const { token } = await tokens.create({ kind: 'album', album: 'F', perms: 'read', expiresIn: '1h' })
  const get = () => fetch(`${gate.url}/api/studies`, { headers: { authorization: `Bearer ${token}` } })
  await waitFor(
    `a token created on the new master (${to}) to be looked up`,
    async () => (await get()).status === 200,
  )
  t.pass(`master moved from ${from} to ${to}`)
})
