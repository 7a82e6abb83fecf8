// Spawns a real redis-server on a free port for one test file (no persistence), and stops it.
// Usage: const redis = await startRedis(); t.teardown(redis.stop)
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { freePort, redisServerArgs } from '../../scripts/lib/ports.js'

export interface RedisHandle {
  port: number
  url: string
  /** A client for test setup/assertions; closed by stop(). */
  client: Redis
  /** Stop the server (SIGTERM, waits for exit). */
  stop: () => Promise<void>
  /** Stop without closing the client: simulate an outage; start again with restart(). */
  kill: () => Promise<void>
  restart: () => Promise<void>
}

async function waitReady(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const probe = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      probe.disconnect()
      return
    } catch {
      probe.disconnect()
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

function spawnServer(port: number): ChildProcess {
  return spawn('redis-server', redisServerArgs(port), { stdio: 'ignore' })
}

export async function startRedis(): Promise<RedisHandle> {
  const port = await freePort()
  let proc = spawnServer(port)
  await waitReady(port)
  const client = new Redis({ port, host: '127.0.0.1' })
  client.on('error', () => {})
  const killProc = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = once(proc, 'exit')
    proc.kill('SIGTERM')
    await exited
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    kill: killProc,
    restart: async () => {
      proc = spawnServer(port)
      await waitReady(port)
    },
    stop: async () => {
      client.disconnect()
      await killProc()
    },
  }
}
