// Spawns a real local Redis Sentinel setup for one test file: one master, one replica and three
// sentinels (quorum 2) on free ports in a temp dir, no persistence; waits until the sentinels know
// the master and its replica, and stops everything after. kill()/restart() stop and start the data
// nodes (an outage; the sentinels stay), failover() runs SENTINEL FAILOVER and waits for the promotion.
// With `tls`, every node and sentinel speaks TLS only (client certificates required), to its peers too.
// Usage: const sentinel = await startRedisSentinel(); t.teardown(sentinel.stop)
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { redisServerArgs } from '../../scripts/lib/ports.js'
import {
  freePorts,
  probe,
  type RedisProcess,
  type RedisTlsFiles,
  startRedisProcess,
  tlsArgs,
  tlsClientOptions,
  tlsDirectives,
  waitFor,
} from './redis-process.js'

const NAME = 'mymaster'

export interface RedisSentinelHandle {
  /** The master group name (`mymaster`). */
  name: string
  /** The sentinels as `127.0.0.1:port`. */
  sentinels: string[]
  /** The `redis` config section naming this setup (with `tls` when it speaks TLS). */
  config: { sentinel: { name: string; nodes: string[] }; tls?: RedisTlsFiles }
  /** A Sentinel-aware client for test setup/assertions (ioredis defaults: queues and retries). */
  client: Redis
  /** The master's port, as the first sentinel reports it now. */
  masterPort: () => Promise<number>
  /** Stop the master and the replica (the sentinels stay up): an outage for every client. */
  kill: () => Promise<void>
  /** Start them again, empty, in the roles the sentinels know; resolves once the replica is in sync. */
  restart: () => Promise<void>
  /** Stop one data node by port (e.g. the old master after a failover). */
  killNode: (port: number) => Promise<void>
  /** SENTINEL FAILOVER; resolves once the replica is master and every sentinel names it. */
  failover: () => Promise<{ from: number; to: number }>
  stop: () => Promise<void>
}

export async function startRedisSentinel(opts: { tls?: RedisTlsFiles } = {}): Promise<RedisSentinelHandle> {
  const tls = opts.tls ? tlsClientOptions(opts.tls) : undefined
  /** A field of `INFO replication` (`role`, `master_link_status`, …). */
  const replication = async (port: number, field: string): Promise<string | undefined> => {
    const info = await probe(port, (r) => r.info('replication'), tls)
    return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim()
  }
  const dir = await mkdtemp(join(tmpdir(), 'tokengate-sentinel-'))
  const [first, second, ...sentinelPorts] = await freePorts(5)
  const dataPorts = [first, second] as number[]
  const data = new Map<number, RedisProcess>()
  const sentinels = new Map<number, RedisProcess>()

  const startData = async (port: number, masterPort?: number) => {
    if (data.has(port)) return
    // --dir: a replica writes the RDB of its full sync to disk, by default into the cwd.
    const args = [...redisServerArgs(port), '--dir', dir, ...(opts.tls ? tlsArgs(port, opts.tls) : [])]
    if (masterPort !== undefined) args.push('--replicaof', '127.0.0.1', String(masterPort))
    data.set(port, await startRedisProcess(port, args, tls))
  }
  const stopNode = async (port: number) => {
    await data.get(port)?.stop()
    data.delete(port)
  }
  const stopData = async () => {
    await Promise.all(dataPorts.map(stopNode))
  }
  const inSync = (replica: number) =>
    waitFor(
      `replica ${replica} in sync`,
      async () => (await replication(replica, 'master_link_status')) === 'up',
    )
  const askSentinel = <T>(port: number, ...args: (string | number)[]) =>
    probe(port, (r) => r.call('SENTINEL', ...args) as Promise<T>, tls)
  const masterPort = async () =>
    Number(
      (await askSentinel<[string, string]>(sentinelPorts[0] as number, 'GET-MASTER-ADDR-BY-NAME', NAME))[1],
    )
  /** Every sentinel names `master` (and, with `replica`, sees a replica it could promote). */
  const sentinelsAgree = (master: number, replica: boolean) =>
    waitFor(`every sentinel to know master ${master}${replica ? ' and its replica' : ''}`, async () => {
      for (const port of sentinelPorts) {
        const [, at] = await askSentinel<[string, string]>(port, 'GET-MASTER-ADDR-BY-NAME', NAME)
        if (Number(at) !== master) return false
        if (!replica) continue
        const replicas = (await askSentinel<string[][]>(port, 'REPLICAS', NAME)).map(fieldsOf)
        if (!replicas.some((r) => r.flags === 'slave' && r['master-link-status'] === 'ok')) return false
      }
      return true
    })

  const cleanup = async () => {
    await Promise.all([...sentinels.values()].map((p) => p.stop()))
    await stopData()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await startData(first as number)
    await startData(second as number, first)
    // Sentinels learn replicas from the master's INFO, asked at once and then every 10 s: start
    // them once the replica is attached, so the first answer already lists it.
    await inSync(second as number)
    await Promise.all(
      sentinelPorts.map(async (port) => {
        const conf = join(dir, `sentinel-${port}.conf`)
        await writeFile(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir}`,
            `sentinel monitor ${NAME} 127.0.0.1 ${first} 2`,
            `sentinel down-after-milliseconds ${NAME} 2000`,
            `sentinel failover-timeout ${NAME} 10000`,
            ...(opts.tls ? tlsDirectives(port, opts.tls).map((d) => d.join(' ')) : []),
            '',
          ].join('\n'),
        )
        sentinels.set(port, await startRedisProcess(port, [conf, '--sentinel', '--loglevel', 'warning'], tls))
      }),
    )
    await sentinelsAgree(first as number, true)
  } catch (err) {
    await cleanup()
    throw err
  }

  const nodes = sentinelPorts.map((port) => `127.0.0.1:${port}`)
  const client = new Redis({
    sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
    name: NAME,
    ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
  })
  client.on('error', () => {})
  await waitFor('the test client to reach the master', async () => client.status === 'ready')

  return {
    name: NAME,
    sentinels: nodes,
    config: { sentinel: { name: NAME, nodes }, ...(opts.tls ? { tls: opts.tls } : {}) },
    client,
    masterPort,
    kill: stopData,
    killNode: stopNode,
    restart: async () => {
      const master = await masterPort()
      const replica = dataPorts.find((p) => p !== master) as number
      await startData(master)
      await startData(replica, master)
      await inSync(replica)
    },
    failover: async () => {
      const from = await masterPort()
      // NOGOODSLAVE while a sentinel has not yet refreshed what it knows of the replica: retry.
      await waitFor('SENTINEL FAILOVER to be accepted', () =>
        askSentinel<string>(sentinelPorts[0] as number, 'FAILOVER', NAME).then((ok) => ok === 'OK'),
      )
      const to = dataPorts.find((p) => p !== from) as number
      await waitFor(`${to} to be master`, async () => (await replication(to, 'role')) === 'master')
      // The old master is demoted only once the sentinels notice it still claims the role (some
      // seconds later): clients must not wait for that, so neither does this.
      await sentinelsAgree(to, false)
      return { from, to }
    },
    stop: async () => {
      client.disconnect()
      await cleanup()
    },
  }
}

/** SENTINEL REPLICAS answers flat [key, value, key, value, …] lists. */
function fieldsOf(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string
  return out
}
