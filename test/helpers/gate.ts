// Starts tokengate in-process on a free port against a given Redis and upstream, capturing its
// log lines so tests can assert on them (and on the absence of secrets in them).
// Usage: const gate = await startGate({ redisUrl, upstream }); t.teardown(gate.stop)
// (or `redis: cluster.config` instead of redisUrl, for a Sentinel or Cluster section).
import { Writable } from 'node:stream'
import { TokenAdmin } from '../../src/admin/tokens.js'
import { type App, startApp } from '../../src/app.js'
import { type Config, configSchema } from '../../src/config/schema.js'
import { createLogger } from '../../src/log.js'
import { makeKeys } from '../../src/token/keys.js'
import type { RedisClient } from '../../src/token/redis-client.js'
import { h2Mode } from './h2.js'

export interface GateOptions {
  /** A single-node Redis; or give `redis`. */
  redisUrl?: string
  /** The whole `redis` config section (e.g. `{ sentinel: … }`, `{ cluster: … }`); wins over redisUrl. */
  redis?: Record<string, unknown>
  upstream: string
  wado?: string
  /** Extra config merged over the defaults (deep merge is not done: give whole sections). */
  config?: Record<string, unknown>
  mount?: Record<string, unknown>
  now?: () => number
  /** The token cache's clock (monotonic ms), to move its TTLs without waiting. */
  cacheClock?: () => number
}

export interface GateHandle {
  url: string
  port: number
  app: App
  config: Config
  /** Every JSON log line written so far. */
  logs: string[]
  stop: () => Promise<void>
}

export function gateConfig(opts: GateOptions): Config {
  const h2 = h2Mode()
  return configSchema.parse({
    listen: {
      host: '127.0.0.1',
      port: 0,
      // HTTP/2 mode (helpers/h2.ts): the same tests over TLS + HTTP/2.
      ...(h2 ? { tls: { cert: h2.server.cert, key: h2.server.key }, http2: true } : {}),
    },
    redis: opts.redis ?? { url: opts.redisUrl },
    mounts: [
      { path: '/api', upstream: opts.upstream, ...(opts.wado ? { wado: opts.wado } : {}), ...opts.mount },
    ],
    log: { level: 'info' },
    // Free ports: several gates run at once in a test.
    metrics: { port: 0 },
    ...opts.config,
  })
}

export async function startGate(opts: GateOptions): Promise<GateHandle> {
  const config = gateConfig(opts)
  const logs: string[] = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(line)
      cb()
    },
  })
  const app = await startApp(config, {
    log: createLogger(config.log.level, sink),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.cacheClock ? { cacheClock: opts.cacheClock } : {}),
  })
  const port = app.address.port
  const scheme = config.listen.tls ? 'https' : 'http'
  return { url: `${scheme}://127.0.0.1:${port}`, port, app, config, logs, stop: () => app.stop(2000) }
}

/** Token administration on the test Redis, as the CLI does it. */
export function admin(client: RedisClient, prefix = 'tg:'): TokenAdmin {
  return new TokenAdmin(client, makeKeys(prefix), { secretPrefix: 'tg_', expiredGrace: 60_000 })
}

/** The parsed access-log lines (msg === 'request'). */
export function accessLog(gate: GateHandle): Record<string, unknown>[] {
  return gate.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request')
}
