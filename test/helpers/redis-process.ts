// One redis-server process (plain, cluster node or sentinel) spawned for a test, and waiting for
// Redis-side conditions: shared by the single-node, Cluster and Sentinel helpers.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { freePort } from '../../scripts/lib/ports.js'

export interface RedisProcess {
  port: number
  /** SIGTERM, and wait for the exit. Idempotent. */
  stop: () => Promise<void>
}

/** `n` distinct free ports (the kernel may hand the same one out twice in a row). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

/** Poll until a condition holds (shared by every helper and test: wait.ts). */
import { waitFor } from './wait.js'

export { waitFor }

/** Run one command on a fresh, non-retrying connection to 127.0.0.1:port (for polling). */
export async function probe<T>(port: number, run: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  r.on('error', () => {})
  try {
    await r.connect()
    return await run(r)
  } finally {
    r.disconnect()
  }
}

/** Spawn `redis-server ...args` listening on `port`, and wait until it answers PING. */
export async function startRedisProcess(port: number, args: string[]): Promise<RedisProcess> {
  const proc: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' })
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = once(proc, 'exit')
    proc.kill('SIGTERM')
    await exited
  }
  try {
    await waitFor(`redis-server on ${port} to start`, () => probe(port, (r) => r.ping()), 5000)
  } catch (err) {
    await stop()
    throw err
  }
  return { port, stop }
}
