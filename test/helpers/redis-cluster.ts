// Spawns a real local Redis Cluster for one test file: three masters, no replicas, no persistence,
// on free ports (client and bus) in a temp dir, joined by `redis-cli --cluster create`; stops it and
// removes the dir after. kill()/restart() stop every node and bring them back from their cluster
// config files (same node ids and slots, data gone), for outage tests. With `tls`, every node speaks
// TLS only (client certificates required), its cluster bus too.
// Usage: const cluster = await startRedisCluster(); t.teardown(cluster.stop)
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster } from 'ioredis'
import { redisServerArgs } from '../../scripts/lib/ports.js'
import {
  freePorts,
  probe,
  type RedisProcess,
  type RedisTlsFiles,
  startRedisProcess,
  tlsArgs,
  tlsClientOptions,
  waitFor,
} from './redis-process.js'

export interface RedisClusterHandle {
  /** The nodes as `127.0.0.1:port`. */
  nodes: string[]
  /** The `redis` config section naming this cluster (with `tls` when it speaks TLS). */
  config: { cluster: { nodes: string[] }; tls?: RedisTlsFiles }
  /** A client for test setup/assertions (ioredis defaults: queues and retries); closed by stop(). */
  client: Cluster
  /** Stop every node: an outage for every client. */
  kill: () => Promise<void>
  /** Start every node again; resolves once each says `cluster_state:ok`. */
  restart: () => Promise<void>
  /** Stop one node (`127.0.0.1:port`); restartNode() starts it again and waits for `cluster_state:ok`. */
  killNode: (node: string) => Promise<void>
  restartNode: (node: string) => Promise<void>
  stop: () => Promise<void>
}

const portOf = (node: string) => Number(node.split(':')[1])

export async function startRedisCluster(
  masters = 3,
  opts: { tls?: RedisTlsFiles } = {},
): Promise<RedisClusterHandle> {
  const tls = opts.tls ? tlsClientOptions(opts.tls) : undefined
  const dir = await mkdtemp(join(tmpdir(), 'tokengate-cluster-'))
  const all = await freePorts(masters * 2)
  const ports = all.slice(0, masters)
  const args = (port: number, i: number) => [
    ...redisServerArgs(port),
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    join(dir, `nodes-${port}.conf`),
    // Explicit bus ports: port + 10000, the default, need not be free.
    '--cluster-port',
    String(all[masters + i]),
    // Short, so a restarted node rejoins quickly (the rejoin delay follows it).
    '--cluster-node-timeout',
    '1000',
    '--dir',
    dir,
    ...(opts.tls ? [...tlsArgs(port, opts.tls), '--tls-cluster', 'yes'] : []),
  ]
  const procs = new Map<number, RedisProcess>()
  // Running nodes by port: starting one that runs, or stopping one that does not, does nothing.
  const startNode = async (port: number) => {
    if (!procs.has(port)) procs.set(port, await startRedisProcess(port, args(port, ports.indexOf(port)), tls))
  }
  const killNode = async (port: number, signal?: NodeJS.Signals) => {
    await procs.get(port)?.stop(signal)
    procs.delete(port)
  }
  // Every node at once, with SIGKILL: on SIGTERM a node still took connections for a moment, and a
  // gate's invalidation subscriber, moving from a node already gone, could resubscribe on it, clear
  // its cache as designed, and so fail "cached tokens still pass" (seen once in CI).
  const killAll = async () => {
    await Promise.all(ports.map((port) => killNode(port, 'SIGKILL')))
  }
  const startAll = async () => {
    await Promise.all(ports.map(startNode))
  }
  const clusterOk = () =>
    waitFor('cluster_state:ok on every node', async () => {
      const infos = await Promise.all(ports.map((port) => probe(port, (r) => r.cluster('INFO'), tls)))
      return infos.every((info) => String(info).includes('cluster_state:ok'))
    })
  const nodes = ports.map((port) => `127.0.0.1:${port}`)
  try {
    await startAll()
    await promisify(execFile)('redis-cli', [
      ...(opts.tls ? ['--tls', '--cacert', opts.tls.ca, '--cert', opts.tls.cert, '--key', opts.tls.key] : []),
      '--cluster',
      'create',
      ...nodes,
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    await clusterOk()
  } catch (err) {
    await killAll()
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const client = new Cluster(
    ports.map((port) => ({ host: '127.0.0.1', port })),
    tls ? { redisOptions: { tls } } : {},
  )
  client.on('error', () => {})
  await waitFor('the test client to see the cluster', async () => client.status === 'ready')
  return {
    nodes,
    config: { cluster: { nodes }, ...(opts.tls ? { tls: opts.tls } : {}) },
    client,
    kill: killAll,
    restart: async () => {
      await startAll()
      await clusterOk()
    },
    killNode: (node) => killNode(portOf(node)),
    restartNode: async (node) => {
      await startNode(portOf(node))
      await clusterOk()
    },
    stop: async () => {
      client.disconnect()
      await killAll()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
