// Composition root: config → Redis → store → cache → invalidation subscriber → forwarder →
// pipeline → listener. Start, stop and reload live here so config/ stays below route/ and
// nothing imports upward.
import type { AddressInfo } from 'node:net'
import type { Redis } from 'ioredis'
import type { Config } from './config/schema.js'
import { createForwarderFor } from './forward/engines.js'
import type { Forwarder } from './forward/forwarder.js'
import { createLogger, type Logger } from './log.js'
import { strippedHeaders } from './rewrite/identity-headers.js'
import { compileRoutes } from './route/compile.js'
import { createPipeline, type PipelineDeps } from './server/pipeline.js'
import { createProxyServer, type ProxyServer } from './server/proxy-server.js'
import { type CachedTokenStore, cached } from './token/cache.js'
import { subscribeInvalidations } from './token/invalidation.js'
import { makeKeys } from './token/keys.js'
import { connectRedis } from './token/redis-client.js'
import { RedisTokenStore } from './token/redis-store.js'

export interface App {
  /** The public listener's address once started. */
  address: AddressInfo
  /** The token cache (tests and metrics look at it). */
  cache: CachedTokenStore
  forwarder: Forwarder
  /** Replace routes, rewrite settings and cache settings from a new config without dropping connections. */
  reload(next: Config): void
  /** Graceful: stop accepting, finish in-flight requests (up to `deadlineMs`), close Redis. */
  stop(deadlineMs?: number): Promise<void>
}

export interface AppOptions {
  log?: Logger
  now?: () => number
}

function pipelineDeps(
  config: Config,
  base: Omit<PipelineDeps, 'routes' | 'secrets' | 'rewrite'>,
): PipelineDeps {
  return {
    ...base,
    routes: compileRoutes(config),
    secrets: { prefix: config.tokens.prefix, allowLegacy: config.tokens.allowLegacy },
    rewrite: { identityHeaders: config.identityHeaders, stripped: strippedHeaders(config.identityHeaders) },
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

async function waitReady(client: Redis, what: string, timeoutMs: number, log: Logger): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      // Start anyway: requests fail closed (503) until Redis answers, and recovery needs no restart.
      log.warn({ what }, 'redis not reachable yet; requests needing it get 503 until it is')
      resolve()
    }, timeoutMs)
    client.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Build and start tokengate from a validated config. */
export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.log ?? createLogger(config.log.level)
  const now = opts.now ?? Date.now
  const keys = makeKeys(config.redis.keyPrefix)

  const redis = connectRedis(config.redis)
  const subscriber = connectRedis(config.redis, { subscriber: true })
  let lastRedisError = ''
  for (const client of [redis, subscriber]) {
    client.on('error', (err: Error) => {
      // ioredis retries on its own; log each distinct error once, not once per retry.
      if (err.message !== lastRedisError) log.warn({ err: err.message, url: config.redis.url }, 'redis error')
      lastRedisError = err.message
    })
    client.on('ready', () => {
      lastRedisError = ''
    })
  }
  await waitReady(redis, 'store', config.redis.connectTimeout, log)

  const cache = cached(new RedisTokenStore(redis, keys), config.cache)
  const invalidations = subscribeInvalidations(subscriber, keys, {
    evict: (key) => cache.evict(key),
    // Invalidations sent while we were disconnected are lost: forget everything cached.
    resubscribed: (first) => {
      cache.clear()
      if (!first) log.warn('invalidation channel reconnected; token cache cleared')
    },
  })
  // Serve only once revocations can reach us (or Redis is down, and then nothing is cached).
  await Promise.race([invalidations.ready, delay(config.redis.connectTimeout)])

  const forwarder = createForwarderFor(config.forward)
  let deps = pipelineDeps(config, { store: cache, forwarder, log, now })
  const proxy: ProxyServer = createProxyServer(createPipeline(() => deps))
  const address = await proxy.listen(config.listen.host, config.listen.port)
  log.info(
    { host: address.address, port: address.port, mounts: config.mounts.map((m) => m.path) },
    'tokengate listening',
  )

  return {
    address,
    cache,
    forwarder,
    reload(next) {
      deps = pipelineDeps(next, { store: cache, forwarder, log, now })
    },
    async stop(deadlineMs = 10_000) {
      await proxy.close(deadlineMs)
      await invalidations.close()
      await forwarder.close()
      await cache.close()
      subscriber.disconnect()
      log.flush?.()
    },
  }
}
