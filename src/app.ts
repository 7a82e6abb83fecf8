// Composition root: config → Redis → store → cache → invalidation subscriber → forwarder →
// pipeline → listeners (public, operations). Start, stop and reload live here so config/ stays
// below route/ and nothing imports upward.
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { type AdminApi, startAdminApi } from './admin/api.js'
import { loadConfigFile } from './config/load.js'
import type { Config } from './config/schema.js'
import { ConfigError } from './errors.js'
import type { ExecutorDeps } from './forward/execute.js'
import type { Forwarder } from './forward/forwarder.js'
import { createSearchClient } from './forward/search-client.js'
import { createForwarder } from './forward/undici-forwarder.js'
import { StudyMembership } from './forward/wado-verify.js'
import { accessLogger, createLogger, type Logger } from './log.js'
import { createOpsServer, type OpsServer } from './metrics/ops-server.js'
import { GateMetrics } from './metrics/registry.js'
import { strippedHeaders } from './rewrite/identity-headers.js'
import { compileRoutes } from './route/compile.js'
import { createPipeline, type PipelineDeps } from './server/pipeline.js'
import { createProxyServer, type ProxyServer } from './server/proxy-server.js'
import { upstreamsOf } from './server/upstreams.js'
import { type CachedTokenStore, type CacheStats, cached, newCacheStats } from './token/cache.js'
import { subscribeInvalidations } from './token/invalidation.js'
import { makeKeys } from './token/keys.js'
import { recordLastUsed } from './token/last-used.js'
import { connectRedis, describeRedis, type RedisClient } from './token/redis-client.js'
import { RedisTokenStore } from './token/redis-store.js'
import { evictKeyOf, type StudySetRef, StudySets } from './token/study-sets.js'

export interface App {
  /** The public listener's address once started. */
  address: AddressInfo
  /** The operations listener's address (/metrics, /healthz, /readyz), when enabled. */
  opsAddress: AddressInfo | undefined
  /** The admin API listener's address, when `admin` is configured. */
  adminAddress: AddressInfo | undefined
  /** The token cache in use now (replaced when a reload changes the cache settings). */
  readonly cache: CachedTokenStore
  forwarder: Forwarder
  metrics: GateMetrics
  /** Apply a new config: routes, rewrite, token and cache settings, without dropping connections. */
  reload(next: Config): void
  /** Re-read the config file and apply it; an invalid file is logged and the running config kept. */
  reloadFromFile(path: string): Promise<boolean>
  /** Graceful: readiness goes 503, stop accepting, finish in-flight requests (up to the deadline), close Redis. */
  stop(deadlineMs?: number): Promise<void>
}

export interface AppOptions {
  log?: Logger
  now?: () => number
  /** A worker of a multi-process server: the primary runs the operations listener. */
  worker?: boolean
}

/** Sections that only a restart can change: a reload that touches them says so. */
const RESTART_ONLY = ['listen', 'redis', 'metrics', 'forward', 'admin', 'audit'] as const

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8'))
    return String(pkg.version)
  } catch {
    return 'unknown'
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

async function waitReady(client: RedisClient, timeoutMs: number, log: Logger): Promise<void> {
  if (client.status === 'ready') return
  const ready = new Promise<void>((resolve) => client.once('ready', () => resolve()))
  const timedOut = delay(timeoutMs).then(() => true)
  // Start anyway: requests fail closed (503) until Redis answers, and recovery needs no restart.
  if ((await Promise.race([ready.then(() => false), timedOut])) === true)
    log.warn('redis not reachable yet; requests needing it get 503 until it is')
}

/** Build and start tokengate from a validated config. */
export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.log ?? createLogger(config.log.level)
  const now = opts.now ?? Date.now
  const keys = makeKeys(config.redis.keyPrefix)
  const metrics = new GateMetrics({ version: version() })

  const redis = connectRedis(config.redis)
  const subscriber = connectRedis(config.redis, { subscriber: true })
  // Named without passwords: the log must not carry them.
  const described = describeRedis(config.redis)
  let lastRedisError = ''
  for (const client of [redis, subscriber]) {
    client.on('error', (err: Error) => {
      metrics.redisError('connection')
      // ioredis retries on its own; log each distinct error once, not once per retry.
      if (err.message !== lastRedisError) log.warn({ err: err.message, redis: described }, 'redis error')
      lastRedisError = err.message
    })
    client.on('reconnecting', () => metrics.redisReconnect())
    client.on('ready', () => {
      lastRedisError = ''
    })
  }
  await waitReady(redis, config.redis.connectTimeout, log)

  const store = new RedisTokenStore(redis, keys, () => metrics.redisError('command'))
  const stats: CacheStats = newCacheStats()
  let cache = cached(store, { ...config.cache, stats })
  let cacheSettings = JSON.stringify(config.cache)
  metrics.bindCache(() => cache)

  const invalidations = subscribeInvalidations(subscriber, keys, {
    evict: (key) => cache.evict(key),
    // Invalidations sent while we were disconnected are lost: forget everything cached.
    resubscribed: (first) => {
      cache.clear()
      cache.resume()
      if (!first) log.warn('invalidation channel reconnected; token cache cleared')
    },
    // Until then every lookup asks Redis (a revocation could be missed); cached records are
    // served only if Redis fails too.
    lost: () => cache.suspend(),
  })
  // Serve only once revocations can reach us (or Redis is down, and then nothing is cached).
  await Promise.race([invalidations.ready, delay(config.redis.connectTimeout)])

  const lastUsed = recordLastUsed(redis, keys, {
    intervalMs: config.tokens.lastUsedInterval,
    onError: () => metrics.redisError('command'),
  })
  const forwarder = createForwarder(config.forward)
  metrics.bindUpstreamSockets(() => forwarder.socketCounts())
  const searches = createSearchClient(config.forward)
  const studySets = new StudySets(redis, keys)
  const executor: Omit<ExecutorDeps, 'parallelSearches'> = {
    forwarder,
    searches,
    // WADO-URI (scoping: studies): which instances belong to which study, as the archive says.
    membership: new StudyMembership(searches),
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
      tracked: (into: StudySetRef, study: string) => studySets.tracked(into, study),
      claim: (into: StudySetRef, study: string) => studySets.claim(into, study),
      async add(into: StudySetRef, uids: readonly string[]) {
        await studySets.add(into, uids)
        cache.evict(evictKeyOf(into))
      },
      async remove(from: StudySetRef, uids: readonly string[]) {
        await studySets.remove(from, uids)
        cache.evict(evictKeyOf(from))
      },
    },
  }

  let running = config
  let deps: PipelineDeps
  const build = (c: Config): PipelineDeps => {
    const routes = compileRoutes(c)
    metrics.setMounts(routes.mounts.map((m) => m.prefix))
    return {
      routes,
      store: cache,
      forwarder,
      log,
      now,
      metrics,
      lastUsed,
      // Built per config: a reload may change log.level or log.access.
      accessLog: c.log.access && log.isLevelEnabled('info') ? accessLogger(log) : null,
      secrets: { prefix: c.tokens.prefix, allowLegacy: c.tokens.allowLegacy },
      rewrite: {
        identityHeaders: c.identityHeaders,
        stripped: strippedHeaders(c.identityHeaders),
        scoping: c.scoping,
        publicUrl: c.publicUrl,
        studies: c.studies,
      },
      executor: { ...executor, parallelSearches: c.studies.parallelSearches },
    }
  }
  deps = build(config)

  let shuttingDown = false
  const proxy: ProxyServer = createProxyServer(
    createPipeline(() => deps),
    config.listen,
  )
  const address = await proxy.listen(config.listen.host, config.listen.port)
  let ops: OpsServer | undefined
  let opsAddress: AddressInfo | undefined
  if (config.metrics.enabled && !opts.worker) {
    ops = createOpsServer(metrics.registry, {
      store: () => store.ping(),
      upstreams: () => upstreamsOf(deps.routes),
      shuttingDown: () => shuttingDown,
    })
    opsAddress = await ops.listen(config.metrics.host, config.metrics.port)
  }
  log.info(
    {
      host: address.address,
      port: address.port,
      mounts: config.mounts.map((m) => m.path),
      ...(opsAddress ? { metricsPort: opsAddress.port } : {}),
    },
    'tokengate listening',
  )
  // The admin API (off unless configured) shares the store's Redis connection; not reloaded on SIGHUP.
  const adminApi: AdminApi | undefined = await startAdminApi(config, { redis, keys, log, now })

  const app: App = {
    address,
    opsAddress,
    adminAddress: adminApi?.address,
    get cache() {
      return cache
    },
    forwarder,
    metrics,
    reload(next) {
      for (const section of RESTART_ONLY) {
        if (JSON.stringify(next[section]) !== JSON.stringify(running[section]))
          log.warn({ section }, `config reload: changes to "${section}" take effect after a restart`)
      }
      const nextCache = JSON.stringify(next.cache)
      if (nextCache !== cacheSettings) {
        // New size or lifetimes: start a fresh cache (the old entries are dropped, counters kept).
        cache = cached(store, { ...next.cache, stats })
        cacheSettings = nextCache
      }
      log.level = next.log.level
      deps = build(next)
      running = next
    },
    async reloadFromFile(path) {
      try {
        app.reload(await loadConfigFile(path))
        metrics.reloaded(true)
        log.info({ path }, 'config reloaded')
        return true
      } catch (err) {
        metrics.reloaded(false)
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message]
        log.error({ path, problems }, 'config reload refused; keeping the running config')
        return false
      }
    },
    async stop(deadlineMs = running.shutdown.deadline) {
      shuttingDown = true
      await Promise.all([proxy.close(deadlineMs), adminApi?.close(deadlineMs)])
      await lastUsed.close()
      await invalidations.close()
      await forwarder.close()
      searches.close()
      await cache.close()
      await ops?.close()
      log.flush?.()
    },
  }
  return app
}
