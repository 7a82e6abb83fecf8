// One way to open a Redis connection from config, shared by the server's store, the invalidation
// subscriber and the admin CLI, so topology and timeout options are set in one place.
import { Redis } from 'ioredis'
import type { Config } from '../config/schema.js'

export type RedisConfig = Config['redis']

/**
 * Open a client. Commands fail fast while disconnected (no offline queue) so a request whose token
 * is not cached gets 503 at once instead of hanging (fail closed, DESIGN §5).
 */
export function connectRedis(
  cfg: RedisConfig,
  opts: { lazy?: boolean; failFast?: boolean; subscriber?: boolean } = {},
): Redis {
  const failFast = opts.failFast ?? !opts.subscriber
  return new Redis(cfg.url, {
    connectTimeout: cfg.connectTimeout,
    commandTimeout: cfg.commandTimeout,
    enableOfflineQueue: !failFast,
    maxRetriesPerRequest: failFast ? 0 : 3,
    lazyConnect: opts.lazy ?? false,
    // The invalidation subscriber resubscribes itself (token/invalidation.ts) to learn when the
    // channel is live again and clear what may have been missed meanwhile.
    autoResubscribe: !opts.subscriber,
    // Reconnect forever with capped backoff: recovery needs no restart.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  })
}

/**
 * Whether an ioredis error means Redis could not be reached (down, connecting, too slow), as
 * opposed to Redis answering with an error. Callers answer "unavailable" rather than "bug".
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined
  return (
    e?.name === 'MaxRetriesPerRequestError' ||
    /Command timed out|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET/.test(
      e?.message ?? '',
    )
  )
}
