// Composition root: config → Redis → store → cache → invalidation subscriber → forwarder →
// pipeline → listeners (operations, public, admin). Every resource goes onto one stack as it
// opens (lifecycle.ts): a failed start unwinds it and says what failed, stop is the same
// unwinding. A reload builds a whole new set of dependencies and swaps it in one assignment, or
// keeps the old one. Here so config/ stays below route/ and nothing imports upward.
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { startAdminApi } from './admin/api.js'
import { TokenAdmin } from './admin/tokens.js'
import { loadConfigFile } from './config/load.js'
import type { Config } from './config/schema.js'
import { readPems } from './config/tls-files.js'
import { ConfigError } from './errors.js'
import type { ExecutorDeps } from './forward/execute.js'
import type { Forwarder } from './forward/forwarder.js'
import { createSearchClient } from './forward/search-client.js'
import { createForwarder } from './forward/undici-forwarder.js'
import { upstreamTlsByOrigin } from './forward/upstream-tls.js'
import { StudyMembership } from './forward/wado-verify.js'
import { openListener, openOps, openRedis, ResourceStack } from './lifecycle.js'
import { accessLogger, createLogger, type Logger } from './log.js'
import { GateMetrics } from './metrics/registry.js'
import { strippedHeaders } from './rewrite/identity-headers.js'
import { compileRoutes } from './route/compile.js'
import { createAuthLimiter } from './server/auth-limiter.js'
import { trustedProxies } from './server/client-address.js'
import { localEndpoints } from './server/local-endpoints.js'
import { createPipeline, type PipelineDeps } from './server/pipeline.js'
import { createProxyServer, type ListenSecurity } from './server/proxy-server.js'
import { upstreamsOf } from './server/upstreams.js'
import { type CachedTokenStore, cached, newCacheStats } from './token/cache.js'
import { subscribeInvalidations } from './token/invalidation.js'
import { makeKeys } from './token/keys.js'
import { type LastUsedRecorder, recordLastUsed } from './token/last-used.js'
import type { RedisClient } from './token/redis-client.js'
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
  /** Uses noted for `last used`, written every `tokens.lastUsedInterval` (flush() writes them now). */
  lastUsed: LastUsedRecorder
  /**
   * Apply a new config: routes, rewrite, token and cache settings, upstream TLS (mounts[].tls,
   * files re-read), without dropping connections. All or nothing: if building the new
   * dependencies throws, the running ones stay.
   */
  reload(next: Config): void
  /**
   * With `listen.tls`: re-read the certificate and key (from `tls`, default the running config's
   * paths) and serve them to new connections. A bad pair is logged and the old one kept (false).
   */
  reloadCertificate(tls?: Config['listen']['tls']): boolean
  /**
   * Re-read the config file and apply it; an invalid file is logged and the running config kept.
   * The listener's certificate is re-read either way.
   */
  reloadFromFile(path: string): Promise<boolean>
  /**
   * Graceful: readiness goes 503, stop accepting, finish in-flight requests (up to the deadline),
   * then close the rest in reverse order of opening (Redis last). Calling it again waits for the first.
   */
  stop(deadlineMs?: number): Promise<void>
}

export interface AppOptions {
  log?: Logger
  now?: () => number
  /** Monotonic milliseconds for the token cache's TTLs (default performance.now); tests inject one. */
  cacheClock?: () => number
  /** A worker of a multi-process server: the primary runs the operations listener. */
  worker?: boolean
}

/** Sections that only a restart can change: a reload that touches them says so. */
const RESTART_ONLY = ['listen', 'redis', 'metrics', 'forward', 'admin', 'audit', 'authLimiter'] as const

/** A restart-only section as compared on reload: the listener's certificate paths do not count. */
function restartOnly(c: Config, section: (typeof RESTART_ONLY)[number]): unknown {
  if (section !== 'listen' || !c.listen.tls) return c[section]
  return { ...c.listen, tls: { minVersion: c.listen.tls.minVersion } }
}

/** The listener's TLS, HTTP/2 and HSTS settings, with the certificate files read now. */
function listenSecurity(listen: Config['listen']): ListenSecurity {
  const tls = listen.tls
  return {
    ...(tls
      ? {
          tls: {
            ...(readPems('listen.tls', tls, ['cert', 'key'] as const) as { cert: Buffer; key: Buffer }),
            minVersion: tls.minVersion,
          },
        }
      : {}),
    http2: listen.http2,
    ...(listen.hsts === undefined ? {} : { hsts: listen.hsts }),
  }
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8'))
    return String(pkg.version)
  } catch {
    return 'unknown'
  }
}

/** What a reload swaps, all at once. */
interface Live {
  config: Config
  /** JSON of `config.cache`: a reload that changes it gets a new cache. */
  cacheSettings: string
  cache: CachedTokenStore
  deps: PipelineDeps
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

/** Build and start tokengate from a validated config; a failure closes what was opened, then throws. */
export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.log ?? createLogger(config.log.level)
  const stack = new ResourceStack()
  try {
    return await openApp(config, opts, log, stack)
  } catch (err) {
    await stack.unwind((what, e) => log.warn({ what, err: (e as Error)?.message }, 'close failed'))
    log.flush?.()
    throw err
  }
}

async function openApp(config: Config, opts: AppOptions, log: Logger, stack: ResourceStack): Promise<App> {
  const now = opts.now ?? Date.now
  const keys = makeKeys(config.redis.keyPrefix)
  const metrics = new GateMetrics({ version: version() })
  stack.defer('log', () => log.flush?.())
  const watch = {
    log,
    onError: () => metrics.redisError('connection'),
    onReconnect: () => metrics.redisReconnect(),
  }
  const redis = openRedis(stack, 'redis', config.redis, watch)
  const subscriber = openRedis(stack, 'redis subscriber', config.redis, { ...watch, subscriber: true })
  await waitReady(redis, config.redis.connectTimeout, log)

  const store = new RedisTokenStore(redis, keys, () => metrics.redisError('command'))
  const stats = newCacheStats()
  const clock = opts.cacheClock ? { clock: opts.cacheClock } : {}
  // Not trusted until the invalidation channel is live: until then every lookup asks Redis.
  const firstCache = cached(store, { ...config.cache, stats, ...clock, trusted: false })
  // Set below, before any invalidation can arrive (the subscription answers asynchronously).
  let live = { cache: firstCache } as Live
  metrics.bindCache(() => live.cache)

  const invalidations = await stack.open(
    'invalidation subscription',
    () =>
      subscribeInvalidations(subscriber, keys, {
        evict: (key) => live.cache.evict(key),
        // Invalidations sent while we were disconnected are lost: forget everything cached.
        resubscribed: (first) => {
          live.cache.clear()
          live.cache.resume()
          if (!first) log.warn('invalidation channel reconnected; token cache cleared')
        },
        // Until then every lookup asks Redis (a revocation could be missed); cached records are
        // served only if Redis fails too.
        lost: () => {
          live.cache.suspend()
          log.warn('invalidation channel lost; every lookup asks Redis until it is back')
        },
      }),
    (s) => s.close(),
  )
  // Serve only once revocations can reach us (or Redis is down, and then nothing is trusted).
  await Promise.race([invalidations.ready, delay(config.redis.connectTimeout)])

  const lastUsed = recordLastUsed(redis, keys, {
    intervalMs: config.tokens.lastUsedInterval,
    onError: () => metrics.redisError('command'),
  })
  // Closed before Redis (it is pushed after it): the last notes are written on the way out.
  stack.defer('last-used writes', () => lastUsed.close())
  // Shared by every config a reload builds (its counts survive a reload; its settings do not change).
  const limiter = createAuthLimiter(redis, keys, {
    ...config.authLimiter,
    onError: () => metrics.redisError('command'),
  })
  stack.defer('failed-auth counts', () => limiter.close())
  let upstreamTls = upstreamTlsByOrigin(config.mounts)
  const forwarder = createForwarder(config.forward, upstreamTls.byOrigin)
  stack.defer('upstream connections', () => forwarder.close())
  metrics.bindUpstreamSockets(() => forwarder.socketCounts())
  // One HTTP client upstream: split searches and STOW's instance search use the forwarder's pool.
  const searches = createSearchClient(forwarder)
  // The request path's study-set writes: a Redis failure is counted and answers 503.
  const studySets = new StudySets(redis, keys, () => metrics.redisError('command'))
  const executor = studyExecutor(forwarder, searches, studySets, () => live.cache)

  const build = (c: Config, cache: CachedTokenStore): PipelineDeps => {
    const routes = compileRoutes(c)
    const secrets = {
      prefix: c.tokens.prefix,
      allowLegacy: c.tokens.allowLegacy,
      checksumKeys: c.tokens.checksumKey
        ? [c.tokens.checksumKey, ...c.tokens.previousChecksumKeys]
        : c.tokens.previousChecksumKeys,
      allowUnkeyed: c.tokens.allowUnkeyed,
    }
    // The token endpoint and self-service mint tokens with the admin operations (and their audit).
    const tokenAdmin = new TokenAdmin(redis, keys, {
      secretPrefix: c.tokens.prefix,
      checksumKey: c.tokens.checksumKey,
      expiredGrace: c.tokens.expiredGrace,
      now,
      actor: { name: 'tokengate' },
      audit: { maxLen: c.audit.maxLen },
    })
    return {
      local: localEndpoints(c, routes, { admin: tokenAdmin, store: cache, secrets, now }),
      routes,
      store: cache,
      forwarder,
      log,
      now,
      metrics,
      lastUsed,
      // Built per config: a reload may change log.level or log.access.
      accessLog:
        c.log.access && log.levels.values[c.log.level]! <= log.levels.values.info! ? accessLogger(log) : null,
      secrets,
      trusted: trustedProxies(c.trustedProxies),
      limiter,
      ...(c.decisionEndpoint.enabled ? { decidePath: c.decisionEndpoint.path } : {}),
      uploadRate: { minBytesPerSecond: c.listen.minUploadRate, windowMs: c.listen.uploadRateWindow },
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
  live = {
    config,
    cacheSettings: JSON.stringify(config.cache),
    cache: firstCache,
    deps: build(config, firstCache),
  }
  metrics.setMounts(live.deps.routes.mounts.map((m) => m.prefix))

  // Listeners last, operations first: it says 503 while the public listener drains.
  let stopping = false
  let drainUntil = 0
  const drainLeft = () => Math.max(0, drainUntil - performance.now())
  const opsAddress = opts.worker
    ? undefined
    : await openOps(stack, config.metrics, metrics.registry, {
        store: () => store.ping(),
        upstreams: () => upstreamsOf(live.deps.routes),
        shuttingDown: () => stopping,
      })
  const proxy = createProxyServer(
    createPipeline(() => live.deps),
    config.listen,
    listenSecurity(config.listen),
  )
  const address = await openListener(
    stack,
    'listen',
    proxy,
    config.listen,
    () => proxy.close(drainLeft()),
    'listen.port',
  )
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
  const adminApi = config.admin
    ? await stack.open(
        `admin ${config.admin.host}:${config.admin.port}`,
        () => startAdminApi(config, { redis, keys, log, now }),
        (api) => api?.close(drainLeft()),
        'admin.port',
      )
    : undefined

  const app: App = {
    address,
    opsAddress,
    adminAddress: adminApi?.address,
    get cache() {
      return live.cache
    },
    forwarder,
    metrics,
    lastUsed,
    reload(next) {
      for (const section of RESTART_ONLY) {
        // The listener's certificate files are re-read on every reload (reloadCertificate).
        if (JSON.stringify(restartOnly(next, section)) !== JSON.stringify(restartOnly(live.config, section)))
          log.warn({ section }, `config reload: changes to "${section}" take effect after a restart`)
      }
      const cacheSettings = JSON.stringify(next.cache)
      // New size or lifetimes: a fresh cache (counters kept), trusted only if the channel is live now.
      const cache =
        cacheSettings === live.cacheSettings
          ? live.cache
          : cached(store, { ...next.cache, stats, ...clock, trusted: invalidations.live })
      // mounts[].tls files are re-read on every reload too; a bad one throws here: nothing is swapped.
      const nextTls = upstreamTlsByOrigin(next.mounts)
      const deps = build(next, cache) // throws: nothing is swapped
      live = { config: next, cacheSettings, cache, deps }
      if (nextTls.digest !== upstreamTls.digest) {
        forwarder.useUpstreamTls(nextTls.byOrigin)
        log.info(
          { origins: [...nextTls.byOrigin.keys()] },
          'upstream TLS settings reloaded; new connections use them',
        )
      }
      upstreamTls = nextTls
      log.level = next.log.level
      metrics.setMounts(deps.routes.mounts.map((m) => m.prefix))
    },
    reloadCertificate(tls = live.config.listen.tls) {
      if (!tls || !config.listen.tls) return false
      try {
        const pems = readPems('listen.tls', tls, ['cert', 'key'] as const)
        proxy.setCertificate(pems as { cert: Buffer; key: Buffer })
        log.info({ cert: tls.cert }, 'listener certificate reloaded')
        return true
      } catch (err) {
        log.error(
          { cert: tls.cert, key: tls.key, err: (err as Error).message },
          'listener certificate reload refused; keeping the running certificate',
        )
        return false
      }
    },
    async reloadFromFile(path) {
      let next: Config
      try {
        next = await loadConfigFile(path)
      } catch (err) {
        // A config that does not load still rotates the certificate it names now.
        app.reloadCertificate()
        metrics.reloaded(false)
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message]
        log.error({ path, problems }, 'config reload refused; keeping the running config')
        return false
      }
      app.reloadCertificate(next.listen.tls)
      try {
        app.reload(next)
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
    stop(deadlineMs = live.config.shutdown.deadline) {
      if (!stopping) drainUntil = performance.now() + deadlineMs
      stopping = true
      return stack.unwind((what, err) => log.warn({ what, err: (err as Error)?.message }, 'close failed'))
    },
  }
  return app
}

/**
 * What carries out plans: the forwarder, split searches, and STOW recording (scoping: studies):
 * the set changes in Redis (other replicas hear of it on the events channel), and this replica
 * forgets its copy before the client gets the answer.
 */
function studyExecutor(
  forwarder: Forwarder,
  searches: ExecutorDeps['searches'],
  studySets: StudySets,
  cache: () => CachedTokenStore,
): Omit<ExecutorDeps, 'parallelSearches'> {
  return {
    forwarder,
    searches,
    // WADO-URI (scoping: studies): which instances belong to which study, as the archive says.
    membership: new StudyMembership(searches),
    recorder: {
      async has(into: StudySetRef, study: string) {
        const set =
          into.kind === 'album'
            ? await cache().albumStudies(into.album)
            : await cache().inboxStudies(into.user)
        return set.has(study)
      },
      track: (into: StudySetRef, study: string, sops: readonly string[]) =>
        studySets.track(into, study, sops),
      tracked: (into: StudySetRef, study: string) => studySets.tracked(into, study),
      claim: (into: StudySetRef, study: string) => studySets.claim(into, study),
      async add(into: StudySetRef, uids: readonly string[]) {
        await studySets.add(into, uids)
        cache().evict(evictKeyOf(into))
      },
      async remove(from: StudySetRef, uids: readonly string[]) {
        await studySets.remove(from, uids)
        cache().evict(evictKeyOf(from))
      },
    },
  }
}
