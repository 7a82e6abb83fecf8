// Composition root: config → Redis → store → cache → invalidation subscriber → forwarder →
// pipeline → listener. Start, stop and reload live here so config/ stays below route/ and
// nothing imports upward.
import type { AddressInfo } from 'node:net'
import type { Redis } from 'ioredis'
import type { Config } from './config/schema.js'
import type { ExecutorDeps } from './forward/execute.js'
import { createForwarder, type Forwarder } from './forward/forwarder.js'
import { createSearchClient } from './forward/search-client.js'
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
import { evictKeyOf, type StudySetRef, StudySets } from './token/study-sets.js'

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
  base: Omit<PipelineDeps, 'routes' | 'secrets' | 'rewrite' | 'executor'>,
  executor: Omit<ExecutorDeps, 'parallelSearches'>,
): PipelineDeps {
  return {
    ...base,
    routes: compileRoutes(config),
    secrets: { prefix: config.tokens.prefix, allowLegacy: config.tokens.allowLegacy },
    rewrite: {
      identityHeaders: config.identityHeaders,
      stripped: strippedHeaders(config.identityHeaders),
      scoping: config.scoping,
      publicUrl: config.publicUrl,
      studies: config.studies,
    },
    executor: { ...executor, parallelSearches: config.studies.parallelSearches },
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

  const forwarder = createForwarder(config.forward)
  const searches = createSearchClient(config.forward)
  const studySets = new StudySets(redis, keys)
  const executor = {
    forwarder,
    searches,
    // STOW-RS (scoping: studies): the set changes in Redis (other replicas hear of it on the
    // events channel), and this replica forgets its copy before the client gets the answer.
    recorder: {
      async has(into: StudySetRef, study: string) {
        const set =
          into.kind === 'album' ? await cache.albumStudies(into.album) : await cache.inboxStudies(into.user)
        return set.has(study)
      },
      track: (into: StudySetRef, study: string, sops: readonly string[]) =>
        studySets.track(into, study, sops),
      async add(into: StudySetRef, uids: readonly string[]) {
        await studySets.add(into, uids)
        cache.evict(evictKeyOf(into))
      },
    },
  }
  let deps = pipelineDeps(config, { store: cache, forwarder, log, now }, executor)
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
      deps = pipelineDeps(next, { store: cache, forwarder, log, now }, executor)
    },
    async stop(deadlineMs = 10_000) {
      await proxy.close(deadlineMs)
      await invalidations.close()
      await forwarder.close()
      searches.close()
      await cache.close()
      subscriber.disconnect()
      log.flush?.()
    },
  }
}
