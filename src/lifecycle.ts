// Lifecycle, shared by the two composition roots (app.ts, workers.ts): every resource they open
// (Redis connections, the subscription, listeners, timers, workers) goes onto one stack as it
// opens. A start that fails unwinds the stack in reverse and reports what could not be opened;
// stop is the same unwinding. Nothing is closed twice and nothing opened is forgotten.
import type { AddressInfo } from 'node:net'
import type { Config } from './config/schema.js'
import { StartupError } from './errors.js'
import type { Logger } from './log.js'
import { createOpsServer, type MetricsSource, type ReadinessChecks } from './metrics/ops-server.js'
import { closeRedis, connectRedis, describeRedis, type RedisClient } from './token/redis-client.js'

type RedisConfig = Config['redis']

type Close = () => Promise<void> | void

/** What a composition root has opened, closed in reverse order. */
export class ResourceStack {
  readonly #closers: { what: string; close: Close }[] = []
  #unwinding: Promise<void> | undefined

  /**
   * Open a resource named `what` (e.g. `listen 127.0.0.1:8080`) and push its close. A failure to
   * open is a StartupError naming it (and `hint`: the config key to check); nothing is pushed.
   */
  async open<T>(
    what: string,
    open: () => Promise<T> | T,
    close: (opened: T) => Promise<void> | void,
    hint?: string,
  ): Promise<T> {
    if (this.#unwinding) throw new StartupError(`${what}: not opened, stopping`, what)
    let opened: T
    try {
      opened = await open()
    } catch (err) {
      throw startupError(what, err, hint)
    }
    this.defer(what, () => close(opened))
    return opened
  }

  /** Push the close of something already open (a timer, a client that connects on its own). */
  defer(what: string, close: Close): void {
    this.#closers.push({ what, close })
  }

  /**
   * Close everything, newest first. A close that fails is reported to `onError` and the unwinding
   * goes on: one stuck resource must not keep the others open. Calling it again waits for the first.
   */
  unwind(onError: (what: string, err: unknown) => void = () => {}): Promise<void> {
    this.#unwinding ??= (async () => {
      for (let next = this.#closers.pop(); next; next = this.#closers.pop()) {
        try {
          await next.close()
        } catch (err) {
          onError(next.what, err)
        }
      }
    })()
    return this.#unwinding
  }
}

/** A start failure as an operator reads it: what, why (errno in words), which key to check. */
export function startupError(what: string, err: unknown, hint?: string): StartupError {
  if (err instanceof StartupError) return err
  const e = err as NodeJS.ErrnoException
  const why =
    e?.code === 'EADDRINUSE'
      ? 'address already in use (EADDRINUSE); is another tokengate running?'
      : e?.code === 'EACCES'
        ? 'permission denied (EACCES); ports below 1024 need privileges'
        : e?.code === 'EADDRNOTAVAIL'
          ? 'no such local address (EADDRNOTAVAIL)'
          : (e?.message ?? String(err))
  return new StartupError(`${what}: ${why}${hint ? `; check \`${hint}\`` : ''}`, what)
}

/** A listener the stack can open (bind) and close. */
export interface Listener {
  listen(host: string, port: number): Promise<AddressInfo>
}

/** Bind `listener` as resource `<what> <host>:<port>`; `close` runs when the stack unwinds. */
export function openListener(
  stack: ResourceStack,
  what: string,
  listener: Listener,
  at: { host: string; port: number },
  close: () => Promise<void>,
  hint: string,
): Promise<AddressInfo> {
  return stack.open(`${what} ${at.host}:${at.port}`, () => listener.listen(at.host, at.port), close, hint)
}

/** How a Redis connection is watched: errors counted and logged once each, reconnects counted. */
export interface RedisWatch {
  log: Logger
  subscriber?: boolean
  onError?: () => void
  onReconnect?: () => void
}

/**
 * Open a Redis connection as resource `what` (it connects, and reconnects, on its own) and push
 * its close. Errors are logged once per distinct message, never with a password.
 */
export function openRedis(
  stack: ResourceStack,
  what: string,
  cfg: RedisConfig,
  watch: RedisWatch,
): RedisClient {
  const client = connectRedis(cfg, watch.subscriber ? { subscriber: true } : {})
  const described = describeRedis(cfg)
  let last = ''
  client.on('error', (err: Error) => {
    watch.onError?.()
    // ioredis retries on its own; log each distinct error once, not once per retry.
    if (err.message !== last)
      watch.log.warn({ err: err.message, redis: described, client: what }, 'redis error')
    last = err.message
  })
  client.on('reconnecting', () => watch.onReconnect?.())
  client.on('ready', () => {
    last = ''
  })
  stack.defer(what, () => closeRedis(client))
  return client
}

/**
 * The operations listener (/metrics, /healthz, /readyz) of either composition root, when
 * `metrics.enabled`: readiness is the store's PING, a TCP probe of every mount's upstream, and
 * 503 from the moment a stop begins.
 */
export async function openOps(
  stack: ResourceStack,
  cfg: Config['metrics'],
  source: MetricsSource,
  checks: ReadinessChecks,
): Promise<AddressInfo | undefined> {
  if (!cfg.enabled) return undefined
  const ops = createOpsServer(source, checks)
  return openListener(stack, 'metrics', ops, cfg, () => ops.close(), 'metrics.port')
}
