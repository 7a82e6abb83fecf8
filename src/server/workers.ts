// All cores (`workers: auto|N`): a primary process forks N workers (node:cluster) that share the
// public port, each running the whole app with its own token cache and invalidation subscriber.
// The primary replaces a worker that dies (with backoff if it keeps dying), serves the
// operations listener (metrics summed over workers by prom-client's AggregatorRegistry, plus its
// own worker gauges), forwards SIGHUP as a reload message after checking the file itself, and on
// SIGTERM/SIGINT lets every worker drain before it exits 0.
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client'
import type { App } from '../app.js'
import { loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { ConfigError } from '../errors.js'
import { createLogger } from '../log.js'
import { createOpsServer } from '../metrics/ops-server.js'
import { compileRoutes } from '../route/compile.js'
import { makeKeys } from '../token/keys.js'
import { connectRedis } from '../token/redis-client.js'
import { RedisTokenStore } from '../token/redis-store.js'
import { upstreamsOf } from './upstreams.js'

const RELOAD = 'tokengate:reload'

/** How many workers `workers` asks for. */
export function workerCount(setting: Config['workers']): number {
  return setting === 'auto' ? availableParallelism() : setting
}

/** Worker side: let the primary collect this worker's metrics, and reload when it says so. */
export function joinPrimary(app: App, configPath: string): void {
  AggregatorRegistry.setRegistries([app.metrics.registry])
  // Constructing one registers the worker's answer to the primary's metrics requests.
  new AggregatorRegistry()
  process.on('message', (message: unknown) => {
    if ((message as { type?: string })?.type === RELOAD) void app.reloadFromFile(configPath)
  })
}

/** Primary side: fork, supervise, aggregate, relay signals. Resolves once running. */
export async function runPrimary(configPath: string, config: Config): Promise<void> {
  const log = createLogger(config.log.level)
  const count = workerCount(config.workers)
  const aggregator = new AggregatorRegistry()
  const own = new Registry()
  const alive = new Gauge({
    name: 'tokengate_workers',
    help: 'Worker processes running now.',
    registers: [own],
  })
  const restarts = new Counter({
    name: 'tokengate_worker_restarts_total',
    help: 'Workers that died and were replaced.',
    registers: [own],
  })

  // The primary's own Redis connection, only for /readyz.
  const redis = connectRedis(config.redis)
  redis.on('error', () => {})
  const store = new RedisTokenStore(redis, makeKeys(config.redis.keyPrefix))
  let routes = compileRoutes(config)
  let stopping = false
  const workers = new Set<Worker>()
  const startedAt = new Map<Worker, number>()
  let backoff = 0

  const fork = () => {
    const worker = cluster.fork()
    workers.add(worker)
    startedAt.set(worker, Date.now())
    alive.set(workers.size)
  }
  cluster.on('exit', (worker, code, signal) => {
    workers.delete(worker)
    alive.set(workers.size)
    const lived = Date.now() - (startedAt.get(worker) ?? 0)
    startedAt.delete(worker)
    if (stopping) return
    restarts.inc()
    // A worker that dies at once (bad config, port taken…) is retried ever more slowly.
    backoff = lived < 5000 ? Math.min(Math.max(backoff * 2, 500), 30_000) : 0
    log.warn(
      { workerPid: worker.process.pid, code, signal, restartInMs: backoff },
      'worker died; replacing it',
    )
    setTimeout(() => {
      if (!stopping) fork()
    }, backoff)
  })

  const ops = config.metrics.enabled
    ? createOpsServer(
        {
          contentType: aggregator.contentType,
          // Workers' metrics summed, then the primary's own (distinct names: valid exposition).
          metrics: async () => `${await aggregator.clusterMetrics()}\n${await own.metrics()}`,
        },
        {
          store: () => store.ping(),
          upstreams: () => upstreamsOf(routes),
          shuttingDown: () => stopping,
          extra: () => ({ workers: workers.size === count ? 'ok' : `${workers.size}/${count} running` }),
        },
      )
    : undefined
  const opsAddress = ops ? await ops.listen(config.metrics.host, config.metrics.port) : undefined
  for (let i = 0; i < count; i++) fork()
  log.info(
    { workers: count, ...(opsAddress ? { metricsPort: opsAddress.port } : {}) },
    'tokengate primary started',
  )

  process.on('SIGHUP', () => {
    // Check the file once here, so an invalid one is reported once and no worker half-reloads.
    loadConfigFile(configPath).then(
      (next) => {
        routes = compileRoutes(next)
        for (const w of workers) w.send({ type: RELOAD })
        log.info({ path: configPath, workers: workers.size }, 'config reload sent to workers')
      },
      (err: unknown) => {
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message]
        log.error({ path: configPath, problems }, 'config reload refused; keeping the running config')
      },
    )
  })
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    process.stderr.write(`tokengate: ${signal}, stopping ${workers.size} workers\n`)
    for (const w of workers) w.process.kill('SIGTERM')
    // Each worker drains for up to shutdown.deadline; a worker stuck past that is killed.
    const kill = setTimeout(() => {
      for (const w of workers) w.process.kill('SIGKILL')
    }, config.shutdown.deadline + 5000)
    const done = async () => {
      clearTimeout(kill)
      await ops?.close()
      redis.disconnect()
      log.flush?.()
      process.exit(0)
    }
    if (workers.size === 0) void done()
    cluster.on('exit', () => {
      if (workers.size === 0) void done()
    })
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}
