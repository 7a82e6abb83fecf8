// TLS to Redis (issue 17.4): a redis-server that speaks TLS only and requires a client certificate
// from a private CA. tokengate looks tokens up and hears revocations over it with `redis.tls`;
// without the client certificate it fails closed (503). Sentinel and Cluster get the same options.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { type Cluster, Redis } from 'ioredis'
import t from 'tap'
import { freePort } from '../../scripts/lib/ports.js'
import { configSchema } from '../../src/config/schema.js'
import { closeRedis, connectRedis } from '../../src/token/redis-client.js'
import { makePki } from '../helpers/certs.js'
import { admin, startGate } from '../helpers/gate.js'
import { redisTlsChecks } from '../helpers/redis-tls.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const pki = makePki()
t.teardown(pki.remove)
const server = pki.issue('redis')
const client = pki.issue('tokengate', { client: true })
const tls = { ca: pki.ca, cert: client.cert, key: client.key }

const port = await freePort()
const proc: ChildProcess = spawn(
  'redis-server',
  ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
    .concat(['--tls-cert-file', server.cert, '--tls-key-file', server.key, '--tls-ca-cert-file', pki.ca])
    .concat(['--tls-auth-clients', 'yes', '--loglevel', 'warning']),
  { stdio: 'ignore' },
)
t.teardown(async () => {
  if (proc.exitCode !== null) return
  const exited = once(proc, 'exit')
  proc.kill('SIGTERM')
  await exited
})
const setup = new Redis({
  port,
  host: '127.0.0.1',
  tls: { ca: pki.caPem, cert: client.certPem, key: client.keyPem },
  lazyConnect: true,
  retryStrategy: () => 50,
})
setup.on('error', () => {})
t.teardown(() => setup.disconnect())
await waitFor('the TLS redis-server to answer', () => setup.ping())

const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const url = `redis://127.0.0.1:${port}`

redisTlsChecks(t, { redis: { url }, ca: pki.ca, client, tokens: admin(setup), upstream })

t.test(
  'systemCa: false trusts the private CA alone; a reload changing redis.tls says to restart',
  async (t) => {
    const gate = await startGate({ redis: { url, tls: { ...tls, systemCa: false } }, upstream: upstream.url })
    t.teardown(gate.stop)
    const { token } = await admin(setup).create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    const res = await fetch(`${gate.url}/api/studies`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(res.status, 200)
    const redis = gate.config.redis
    gate.app.reload({
      ...gate.config,
      redis: { ...redis, tls: { ...(redis.tls as typeof tls), systemCa: true } },
    })
    const warned = gate.logs.map((l) => JSON.parse(l)).find((l) => l.section === 'redis')
    t.equal(warned?.msg, 'config reload: changes to "redis" take effect after a restart')
  },
)

t.test('Sentinel and Cluster connections carry the same TLS options', async (t) => {
  const sentinel = configSchema.shape.redis.parse({
    sentinel: { name: 'mymaster', nodes: ['127.0.0.1:26379'] },
    tls,
  })
  const viaSentinel = connectRedis(sentinel, { lazy: true }) as Redis
  t.teardown(() => closeRedis(viaSentinel))
  t.ok(viaSentinel.options.tls?.secureContext, 'the master and replicas: redis.tls built once')
  t.equal(
    viaSentinel.options.sentinelTLS?.secureContext,
    viaSentinel.options.tls?.secureContext,
    'the sentinels',
  )
  t.equal(viaSentinel.options.enableTLSForSentinelMode, true)

  const cluster = configSchema.shape.redis.parse({ cluster: { nodes: ['127.0.0.1:7000'] }, tls })
  const viaCluster = connectRedis(cluster, { lazy: true }) as Cluster
  t.teardown(() => closeRedis(viaCluster))
  t.ok(viaCluster.options.redisOptions?.tls?.secureContext, 'every cluster node')
  const subscriber = connectRedis(cluster, { lazy: true, subscriber: true }) as Redis
  t.teardown(() => closeRedis(subscriber))
  t.ok(subscriber.options.tls?.secureContext, 'the cluster invalidation subscriber too')
})
