// Composition root for all cores (`workers: auto|N`): a primary process forks N workers
// (node:cluster) that share the public port, each running the whole app (app.ts) with its own
// token cache and invalidation subscriber. Like app.ts it opens everything onto one stack
// (lifecycle.ts): its Redis connection for /readyz, the operations listener (metrics summed over
// workers by prom-client's AggregatorRegistry, plus its own worker gauges), the workers. Start
// resolves once every worker listens; a worker that dies before any has served fails the start
// (exit 1) instead of being restarted forever. Afterwards a worker that dies is replaced (with
// backoff if it keeps dying). Reload checks the file once and tells every worker; stop lets every
// worker drain, then unwinds.
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client'
import type { App } from './app.js'
import { loadConfigFile } from './config/load.js'
import type { Config } from './config/schema.js'
import { ConfigError, StartupError } from './errors.js'
import { openOps, openRedis, ResourceStack } from './lifecycle.js'
import type { Logger } from './log.js'
import { compileRoutes } from './route/compile.js'
import { upstreamsOf } from './server/upstreams.js'
import { makeKeys } from './token/keys.js'
import { RedisTokenStore } from './token/redis-store.js'

const RELOAD = 'tokengate:reload'
/** A worker that lived less than this was failing, not serving: its replacement waits longer. */
const SHORT_LIFE_MS = 5000

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

/** The running primary, driven by main.ts's signal handlers. */
export interface Primary {
  /** Check the file once (an invalid one is logged, and no worker half-reloads), then reload every worker. */
  reload(): void
  /** SIGTERM every worker, wait for them (killed past shutdown.deadline + 5 s), then unwind. */
  stop(): Promise<void>
}

/** Primary side: open, fork, supervise. Resolves once every worker listens; rejects (unwound) if one cannot start. */
export async function startPrimary(configPath: string, config: Config, log: Logger): Promise<Primary> {
  const stack = new ResourceStack()
  try {
    return await openPrimary(configPath, config, log, stack)
  } catch (err) {
    await stack.unwind((what, e) => log.warn({ what, err: (e as Error)?.message }, 'close failed'))
    throw err
  }
}

async function openPrimary(
  configPath: string,
  config: Config,
  log: Logger,
  stack: ResourceStack,
): Promise<Primary> {
  stack.defer('log', () => log.flush?.())
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
  const redis = openRedis(stack, 'redis', config.redis, { log })
  const store = new RedisTokenStore(redis, makeKeys(config.redis.keyPrefix))
  let routes = compileRoutes(config)
  let stopping = false
  const opsAddress = await openOps(
    stack,
    config.metrics,
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

  const workers = new Set<Worker>()
  const startedAt = new Map<Worker, number>()
  let served = false
  let backoff = 0
  let failStart: (err: Error) => void = () => {}
  const timers = new Set<NodeJS.Timeout>()
  const fork = () => {
    const worker = cluster.fork()
    workers.add(worker)
    startedAt.set(worker, performance.now())
    alive.set(workers.size)
  }
  const onExit = (worker: Worker, code: number | null, signal: string | null) => {
    workers.delete(worker)
    alive.set(workers.size)
    const lived = performance.now() - (startedAt.get(worker) ?? 0)
    startedAt.delete(worker)
    if (stopping) return
    if (!served) {
      failStart(
        new StartupError(
          `worker ${worker.id} exited (${signal ?? `code ${code}`}) before listening; its error is above`,
          'workers',
        ),
      )
      return
    }
    restarts.inc()
    // A worker that dies at once (bad config, port taken…) is retried ever more slowly.
    backoff = lived < SHORT_LIFE_MS ? Math.min(Math.max(backoff * 2, 500), 30_000) : 0
    log.warn(
      { workerPid: worker.process.pid, code, signal, restartInMs: backoff },
      'worker died; replacing it',
    )
    const timer = setTimeout(() => {
      timers.delete(timer)
      if (!stopping) fork()
    }, backoff)
    timers.add(timer)
  }
  cluster.on('exit', onExit)
  // Pushed before the first fork: a failed start stops the workers already running.
  stack.defer('workers', async () => {
    stopping = true
    for (const timer of timers) clearTimeout(timer)
    const exited = Promise.all([...workers].map((w) => new Promise((r) => w.once('exit', r))))
    for (const w of workers) w.process.kill('SIGTERM')
    // Each worker drains for up to shutdown.deadline; a worker stuck past that is killed.
    const kill = setTimeout(() => {
      for (const w of workers) w.process.kill('SIGKILL')
    }, config.shutdown.deadline + 5000)
    await exited
    clearTimeout(kill)
    cluster.removeListener('exit', onExit)
  })

  const listening = new Promise<void>((resolve, reject) => {
    failStart = reject
    let up = 0
    const onListening = () => {
      if (++up < count) return
      cluster.removeListener('listening', onListening)
      served = true
      resolve()
    }
    cluster.on('listening', onListening)
  })
  log.info(
    { workers: count, ...(opsAddress ? { metricsPort: opsAddress.port } : {}) },
    'tokengate primary started',
  )
  for (let i = 0; i < count; i++) fork()
  await listening
  log.info({ workers: count }, 'every worker listens')

  return {
    reload() {
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
    },
    stop: () => stack.unwind((what, e) => log.warn({ what, err: (e as Error)?.message }, 'close failed')),
  }
}
