// One way to open a Redis connection from config, shared by the server's store, the invalidation
// subscriber and the admin CLI, so the topology (single node, Sentinel or Cluster), timeouts and
// reconnection are set in one place. Also the one way to name that Redis in messages and logs,
// without its passwords.
import type { SecureContext } from 'node:tls'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { type Config, DEFAULT_REDIS_URL } from '../config/schema.js'
import { clientTls } from '../config/tls-files.js'

export type RedisConfig = Config['redis']
/** What connectRedis returns: a Cluster for `redis.cluster` (except subscribers), else a Redis. */
export type RedisClient = Redis | Cluster

export interface ConnectOptions {
  /** Do not connect until the first command (or `connect()`). */
  lazy?: boolean
  /**
   * true (the default, except for subscribers): commands fail at once while disconnected. false:
   * they wait for a reconnection, a few attempts at most — for one-shot tools such as the CLI.
   */
  failFast?: boolean
  /** A connection for SUBSCRIBE only; it resubscribes nothing itself (token/invalidation.ts does). */
  subscriber?: boolean
}

/** Reconnection attempts a command waits for when not failing fast. */
const PATIENT_RETRIES = 3

/**
 * Delay before reconnection attempt `times` (1, 2, …): 50 ms, then every 100 ms. Short on purpose:
 * while a replica is cut off it cannot hear revocations (and serves cached tokens if Redis is
 * down for it), so it must be back within ~100 ms of Redis. Refused connections cost nothing;
 * an unreachable host is paced by connectTimeout anyway.
 */
export function reconnectDelay(times: number): number {
  return times <= 1 ? 50 : 100
}

/**
 * Open a client for the configured topology. Commands fail fast while disconnected (no offline
 * queue) so a request whose token is not cached gets 503 at once instead of hanging (fail closed,
 * DESIGN §5), and the client reconnects forever with capped backoff: recovery needs no restart.
 */
export function connectRedis(cfg: RedisConfig, opts: ConnectOptions = {}): RedisClient {
  const tls = redisTls(cfg)
  const failFast = opts.failFast ?? !opts.subscriber
  const common: RedisOptions = {
    connectTimeout: cfg.connectTimeout,
    commandTimeout: cfg.commandTimeout,
    enableOfflineQueue: !failFast,
    maxRetriesPerRequest: failFast ? 0 : PATIENT_RETRIES,
    lazyConnect: opts.lazy ?? false,
    // The invalidation subscriber resubscribes itself (token/invalidation.ts) to learn when the
    // channel is live again and clear what may have been missed meanwhile.
    autoResubscribe: !opts.subscriber,
    retryStrategy: reconnectDelay,
    // Commands issued in the same tick (concurrent requests' lookups) leave in one write: fewer
    // syscalls on both ends of a cache miss (bench/README.md).
    enableAutoPipelining: !opts.subscriber,
    ...(tls ? { tls } : {}),
  }
  if (cfg.cluster) {
    if (opts.subscriber) return clusterSubscriber(cfg.cluster, common)
    return new Cluster(cfg.cluster.nodes, {
      // ioredis queues a cluster's commands while it (re)connects, with no timeout of its own:
      // without fail-fast, the client gives up after a few attempts so a command cannot hang.
      enableOfflineQueue: !failFast,
      enableAutoPipelining: true,
      clusterRetryStrategy: (times) => (failFast || times <= PATIENT_RETRIES ? reconnectDelay(times) : null),
      lazyConnect: common.lazyConnect,
      redisOptions: {
        connectTimeout: common.connectTimeout,
        commandTimeout: common.commandTimeout,
        maxRetriesPerRequest: common.maxRetriesPerRequest,
        ...(tls ? { tls } : {}),
        ...(cfg.cluster.password === undefined ? {} : { password: cfg.cluster.password }),
      },
    })
  }
  if (cfg.sentinel) {
    const s = cfg.sentinel
    return new Redis({
      ...common,
      sentinels: s.nodes,
      name: s.name,
      ...(s.password === undefined ? {} : { password: s.password }),
      ...(s.sentinelPassword === undefined ? {} : { sentinelPassword: s.sentinelPassword }),
      // One pass over the sentinels per connection attempt; retryStrategy paces the attempts (and
      // maxRetriesPerRequest bounds how long a patient command waits for them).
      sentinelRetryStrategy: () => null,
      sentinelReconnectStrategy: reconnectDelay,
      // Listen for +switch-master on the sentinels and reconnect at once: a failover is followed
      // even when the old master's connection does not drop (a network split rather than a crash).
      failoverDetector: true,
      // A master demoted by a failover answers writes with READONLY until the connection moves:
      // move it (and resend a patient command; a fail-fast one fails, as any command mid-failover).
      reconnectOnError: (err) => (err.message.startsWith('READONLY') ? (failFast ? 1 : 2) : false),
      // redis.tls covers the sentinels too: one private CA for the whole deployment.
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    })
  }
  return new Redis(cfg.url ?? DEFAULT_REDIS_URL, common)
}

/**
 * `redis.tls` as node:tls options (PEM files read now; a missing one names its key), or
 * undefined for plain TCP (a `rediss://` URL still turns TLS on with the system's CAs).
 */
export function redisTls(cfg: RedisConfig): { secureContext: SecureContext } | undefined {
  if (!cfg.tls) return undefined
  return { secureContext: clientTls('redis.tls', cfg.tls).secureContext }
}

/**
 * The invalidation subscriber on a cluster: a plain connection to one node, since a classic
 * PUBLISH reaches the subscribers of every node. Each reconnection attempt moves to the next
 * configured node, so losing one node does not silence invalidations. ioredis's own cluster
 * subscriber also moves, but silently: this one emits `ready` after each reconnection, which the
 * invalidation subscriber needs to resubscribe and clear what it may have missed.
 */
function clusterSubscriber(cluster: NonNullable<RedisConfig['cluster']>, common: RedisOptions): Redis {
  const nodes = cluster.nodes
  let at = 0
  const client: Redis = new Redis({
    ...common,
    host: nodes[0]?.host as string,
    port: nodes[0]?.port as number,
    ...(cluster.password === undefined ? {} : { password: cluster.password }),
    retryStrategy: (times) => {
      at = (at + 1) % nodes.length
      const next = nodes[at] as { host: string; port: number }
      // ioredis reads host and port from its options at each connection attempt.
      client.options.host = next.host
      client.options.port = next.port
      return reconnectDelay(times)
    },
  })
  return client
}

/** Close gracefully (QUIT) when connected, then drop whatever is left and stop reconnecting. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit()
    } catch {
      // dropped below
    }
  }
  // Also after QUIT: ioredis's Sentinel failover detector keeps its sentinel connections (and so
  // the process) alive until disconnect().
  client.disconnect()
}

/** Which config key names the Redis in use, for "check `redis.…`" hints. */
export function redisConfigKey(cfg: RedisConfig): 'redis.url' | 'redis.sentinel' | 'redis.cluster' {
  return cfg.cluster ? 'redis.cluster' : cfg.sentinel ? 'redis.sentinel' : 'redis.url'
}

/** The configured Redis for messages and logs, passwords left out. */
export function describeRedis(cfg: RedisConfig): string {
  const list = (nodes: { host: string; port: number }[]) =>
    nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(', ')
  if (cfg.cluster) return `cluster ${list(cfg.cluster.nodes)}`
  if (cfg.sentinel) return `sentinel master "${cfg.sentinel.name}" via ${list(cfg.sentinel.nodes)}`
  return redactUrl(cfg.url ?? DEFAULT_REDIS_URL)
}

/** The Redis URL without its password, for messages. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return url.replace(/\/\/[^@/]*@/, '//<redacted>@')
  const u = new URL(url)
  if (!u.password) return u.toString()
  // Spelled out: URL would percent-encode the placeholder.
  return `${u.protocol}//${u.username}:<redacted>@${u.host}${u.pathname}${u.search}`
}

/**
 * Whether an ioredis error means Redis could not be reached (down, connecting, too slow), as
 * opposed to Redis answering with an error. Callers answer "unavailable" rather than "bug".
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined
  return (
    e?.name === 'MaxRetriesPerRequestError' ||
    /Command timed out|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|None of startup nodes|All sentinels are unreachable|CLUSTERDOWN/.test(
      e?.message ?? '',
    )
  )
}
