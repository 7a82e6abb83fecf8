// One redis-server process (plain, cluster node or sentinel) spawned for a test, and waiting for
// Redis-side conditions: shared by the single-node, Cluster and Sentinel helpers.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { Redis } from 'ioredis'
import { freePort } from '../../scripts/lib/ports.js'

/**
 * TLS for spawned redis-servers (Sentinel, Cluster) as PEM paths: one certificate, for serving
 * and for connecting to peers (issue it with `{ client: true, server: true }`), which the
 * helpers' own clients present too.
 */
export interface RedisTlsFiles {
  ca: string
  cert: string
  key: string
}

/**
 * The directives that make a redis-server (or sentinel) listen with TLS only on `port`, require
 * client certificates, and speak TLS to its master, replicas and sentinels: `[name, value]` pairs,
 * for a command line (`--name value`, after the plain ones: the last wins) or a config file.
 */
export function tlsDirectives(port: number, files: RedisTlsFiles): [string, string][] {
  return [
    ['port', '0'],
    ['tls-port', String(port)],
    ['tls-cert-file', files.cert],
    ['tls-key-file', files.key],
    ['tls-ca-cert-file', files.ca],
    ['tls-auth-clients', 'yes'],
    ['tls-replication', 'yes'],
  ]
}

/** `tlsDirectives` as command-line arguments. */
export function tlsArgs(port: number, files: RedisTlsFiles): string[] {
  return tlsDirectives(port, files).flatMap(([name, value]) => [`--${name}`, value])
}

/** node:tls options for the helpers' own clients of TLS redis-servers. */
export function tlsClientOptions(files: RedisTlsFiles): ConnectionOptions {
  return { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) }
}

export interface RedisProcess {
  port: number
  /**
   * SIGTERM (or `signal`), and wait for the exit. Idempotent. SIGKILL for an outage of several
   * nodes at once: a node shutting down on SIGTERM still takes connections for a moment.
   */
  stop: (signal?: NodeJS.Signals) => Promise<void>
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

/** Run one command on a fresh, non-retrying connection to 127.0.0.1:port (for polling); TLS with `tls`. */
export async function probe<T>(
  port: number,
  run: (r: Redis) => Promise<T>,
  tls?: ConnectionOptions,
): Promise<T> {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...(tls ? { tls } : {}),
  })
  r.on('error', () => {})
  try {
    await r.connect()
    return await run(r)
  } finally {
    r.disconnect()
  }
}

/** Spawn `redis-server ...args` listening on `port`, and wait until it answers PING (over `tls` if given). */
export async function startRedisProcess(
  port: number,
  args: string[],
  tls?: ConnectionOptions,
): Promise<RedisProcess> {
  const proc: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' })
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = once(proc, 'exit')
    proc.kill(signal)
    await exited
  }
  try {
    await waitFor(`redis-server on ${port} to start`, () => probe(port, (r) => r.ping(), tls), 5000)
  } catch (err) {
    await stop()
    throw err
  }
  return { port, stop }
}
