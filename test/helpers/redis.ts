// Spawns a real redis-server on a free port for one test file (no persistence), and stops it.
// Usage: const redis = await startRedis(); t.teardown(redis.stop)
import { Redis } from 'ioredis'
import { freePort, redisServerArgs } from '../../scripts/lib/ports.js'
import { type RedisProcess, startRedisProcess } from './redis-process.js'

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

export async function startRedis(): Promise<RedisHandle> {
  const port = await freePort()
  let proc: RedisProcess = await startRedisProcess(port, redisServerArgs(port))
  const client = new Redis({ port, host: '127.0.0.1' })
  client.on('error', () => {})
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    kill: () => proc.stop(),
    restart: async () => {
      proc = await startRedisProcess(port, redisServerArgs(port))
    },
    stop: async () => {
      client.disconnect()
      await proc.stop()
    },
  }
}

/**
 * How many times Redis ran these commands since the last RESETSTAT, summed; commands a script ran
 * count too (a token lookup is one HMGET of its record, inside the lookup script).
 */
export async function commandCalls(client: Redis, ...commands: string[]): Promise<number> {
  const stats = await client.info('commandstats')
  let n = 0
  for (const c of commands) n += Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
  return n
}

/** Script calls: ioredis sends EVAL on a connection's first call and after a NOSCRIPT, EVALSHA otherwise. */
export const scriptCalls = (client: Redis): Promise<number> => commandCalls(client, 'eval', 'evalsha')
