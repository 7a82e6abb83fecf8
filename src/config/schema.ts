// The config schema: the one source of config types (`type Config` is inferred, never written by
// hand). Each key's documentation sits beside it, and config/tokengate.yaml repeats it for operators.
// A mount's schema is in schema-mount.ts, the shared value schemas in schema-values.ts.
import { z } from 'zod'
import { checkedMount } from './schema-mount.js'
import {
  cidr,
  clientTlsChecks,
  clientTlsFields,
  duration,
  httpUrl,
  pemFile,
  port,
  redisNode,
} from './schema-values.js'

export {
  ACTIONS,
  action,
  type CorsConfig,
  DICOMWEB_RULES,
  type MountConfig,
  type ResourceRuleConfig,
  type ResourcesConfig,
  type RuleConfig,
  type UpstreamTlsConfig,
} from './schema-mount.js'

/**
 * Client headers stripped by default (`identityHeaders.stripDefault`): ones some upstream or
 * framework takes for the user, the client's address or the real URL.
 */
export const DEFAULT_STRIP_HEADERS = [
  'X-Original-URL',
  'X-Rewrite-URL',
  'X-Original-URI',
  'X-Real-IP',
  'Remote-User',
  'X-Remote-User',
  'X-Forwarded-User',
]

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
/** The keys of the `redis` section that each name a topology; exactly one applies. */
const REDIS_TOPOLOGIES = ['url', 'sentinel', 'cluster'] as const

export const configSchema = z.strictObject({
  /** The public listener. */
  listen: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: port.default(8080),
      /** A client must send its request headers within this (slowloris defence). */
      headersTimeout: duration.default(20_000),
      /** A whole request (headers and body) must arrive within this; 0 = no limit (multi-GB uploads). */
      requestTimeout: duration.default(0),
      /** A connection with no bytes either way for this long is closed (a stalled upload or reader). Keep it above forward.headersTimeout. */
      idleTimeout: duration.default(120_000),
      /** An idle keep-alive connection from a client is closed after this. */
      keepAliveTimeout: duration.default(5_000),
      /**
       * An upload (a request body) slower than this many bytes per second, measured over
       * `uploadRateWindow` while tokengate is not itself waiting for the upstream, is cut and its
       * upstream request aborted (a trickled body would hold an upstream socket for ever). 0 = off.
       */
      minUploadRate: z.number().int().min(0).default(1024),
      /** The window over which `minUploadRate` is measured. */
      uploadRateWindow: duration.default(30_000),
      /**
       * Serve HTTPS. `cert` (PEM chain) and `key` are re-read on SIGHUP: new connections get the
       * new certificate, open ones keep theirs; an unreadable or mismatched pair keeps the old one.
       */
      tls: z
        .strictObject({
          /** PEM certificate chain (leaf first). */
          cert: pemFile,
          /** PEM private key of `cert`. */
          key: pemFile,
          /** Oldest TLS version accepted. */
          minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
        })
        .optional(),
      /** With `tls`: HTTP/2 and HTTP/1.1 on one port (ALPN). */
      http2: z.boolean().default(false),
      /** Send `Strict-Transport-Security: max-age=<this>` on every answer (e.g. `180d`). Off when absent. */
      hsts: duration.optional(),
    })
    .superRefine((l, ctx) => {
      if (l.http2 && !l.tls)
        ctx.addIssue({
          code: 'custom',
          path: ['http2'],
          message: 'http2 needs listen.tls (browsers speak HTTP/2 over TLS only)',
        })
    })
    .prefault({}),
  redis: z
    .strictObject({
      /**
       * Single-node Redis URL (`redis://[:password@]host:port[/db]`, `rediss://` for TLS). The
       * default topology: `redis://127.0.0.1:6379` when neither `sentinel` nor `cluster` is given.
       */
      url: z.string().optional(),
      /** Redis behind Sentinel: the sentinels say which node is the master, and follow failovers. */
      sentinel: z
        .strictObject({
          /** The master group name the sentinels monitor (`sentinel monitor <name> …`). */
          name: z.string().min(1),
          /** Sentinels as `host:port`; list several, any one that answers is enough. */
          nodes: z.array(redisNode).min(1, 'list at least one sentinel as "host:port"'),
          /** Password of the master and replicas (`requirepass`). */
          password: z.string().optional(),
          /** Password of the sentinels themselves, when they have one. */
          sentinelPassword: z.string().optional(),
        })
        .optional(),
      /** Redis Cluster: the nodes to discover it from; the slot map is read from the cluster. */
      cluster: z
        .strictObject({
          /** Cluster nodes as `host:port`; list several, any one that answers is enough. */
          nodes: z.array(redisNode).min(1, 'list at least one cluster node as "host:port"'),
          /** Password of the cluster nodes (`requirepass`). */
          password: z.string().optional(),
        })
        .optional(),
      /**
       * TLS to Redis (single node, Sentinel and its sentinels, Cluster): trust `ca` (PEM) beside
       * the system's CAs (only it with `systemCa: false`); `cert` and `key` for mutual TLS.
       * Present (even empty): TLS is on. Restart to change (a reload says so).
       */
      tls: z.strictObject(clientTlsFields).superRefine(clientTlsChecks).optional(),
      /** Prefix of every key and of the invalidation channel. */
      keyPrefix: z.string().default('tg:'),
      /** Time allowed for one Redis command before the request fails closed with 503. */
      commandTimeout: duration.default(1000),
      /** Time allowed to (re)connect. */
      connectTimeout: duration.default(2000),
    })
    .superRefine((r, ctx) => {
      const given = REDIS_TOPOLOGIES.filter((key) => r[key] !== undefined)
      if (given.length < 2) return
      const names = given.map((key) => `redis.${key}`)
      const both = names.length === 2 ? 'both' : 'all'
      ctx.addIssue({
        code: 'custom',
        // Reported at the second one's line: the first may be an intended default left in place.
        path: [given[1] as string],
        message: `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are ${both} given; keep one topology: redis.url (single node), redis.sentinel or redis.cluster`,
      })
    })
    // A single node at the default address unless another topology is named.
    .transform((r) => (r.sentinel || r.cluster ? r : { ...r, url: r.url ?? DEFAULT_REDIS_URL }))
    .prefault({}),
  /**
   * Worker processes sharing the public port (node:cluster): `auto` = one per CPU core, 1 = a single
   * process. Each worker has its own token cache and receives invalidations; a worker that dies is
   * replaced; the operations listener (metrics summed over workers) runs in the primary process.
   */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default(1),
  /** Public mounts, longest path first when they nest. */
  mounts: z.array(checkedMount).min(1, 'at least one mount is needed'),
  /**
   * `query`: the upstream understands album/inbox query parameters (KHEOPS-like). `studies`: a
   * legacy PACS; tokengate enforces album and inbox study sets itself (DESIGN §4).
   */
  scoping: z.enum(['query', 'studies']).default('query'),
  /**
   * Where clients reach this tokengate (`https://pacs.example.org`, or with a path when a proxy
   * mounts it below one); response URLs are rebuilt on it plus the mount path. Without it they are
   * built from the request's X-Forwarded-Proto / X-Forwarded-Host, else Host.
   */
  publicUrl: httpUrl.optional(),
  /** `scoping: studies` settings. */
  studies: z
    .strictObject({
      /**
       * Longest upstream request target (path + query) a narrowed QIDO search may have; a longer
       * StudyInstanceUID list is split over several searches whose results are merged in order.
       * Orthanc refuses request heads over ~16 KB.
       */
      maxUrlLength: z.number().int().min(512).default(8000),
      /** Upstream searches of one split QIDO request in flight at once. */
      parallelSearches: z.number().int().min(1).max(64).default(4),
    })
    .prefault({}),
  cache: z
    .strictObject({
      /** Most token records kept in memory. 0 disables the cache (every request asks Redis). */
      max: z.number().int().min(0).default(100_000),
      /** How long a record may be served from memory; the safety net behind pub/sub invalidation. */
      ttl: duration.default(30_000),
      /** How long an unknown token is remembered as unknown, so garbage cannot flood Redis. */
      negativeTtl: duration.default(5_000),
      /**
       * While Redis is unreachable, a cached token may still be served this long past `ttl`
       * (never past its expiresAt). 0 = off: past `ttl` an outage means 503.
       */
      staleIfError: duration.default(0),
      /**
       * `scoping: studies`: most StudyInstanceUIDs kept in memory across all cached study sets
       * (albums, inboxes); ~100 bytes each. A set larger than this is read from Redis per request.
       */
      studyUids: z.number().int().min(0).default(1_000_000),
    })
    .prefault({}),
  /**
   * Headers that tell the upstream who is asking. Client-sent copies are always stripped. Names
   * are compared normalised: case-folded, `_` read as `-` (as WSGI, PHP, Rack and CGI read them).
   */
  identityHeaders: z
    .strictObject({
      user: z.string().default('X-Tokengate-User'),
      tokenId: z.string().default('X-Tokengate-Token-Id'),
      scope: z.string().default('X-Tokengate-Scope'),
      /** Further client headers to strip before forwarding (e.g. a `Remote-Groups` an upstream trusts). */
      strip: z.array(z.string()).default([]),
      /**
       * Client headers stripped by default: `X-Original-URL`, `X-Rewrite-URL`, `X-Original-URI`,
       * `X-Real-IP`, `Remote-User`, `X-Remote-User`, `X-Forwarded-User`. Replace the list to change it.
       */
      stripDefault: z.array(z.string()).default(DEFAULT_STRIP_HEADERS),
      /**
       * Token attributes forwarded upstream, attribute name → header name (e.g. `department:
       * X-Tokengate-Department`); client copies of these headers are always stripped.
       */
      attributes: z.record(z.string(), z.string()).optional(),
    })
    .prefault({}),
  /**
   * Proxies in front of tokengate (CIDR blocks or addresses) whose `X-Forwarded-For`,
   * `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` are believed: the client address (for
   * the failed-auth limiter, logs and the upstream) is then the nearest untrusted hop. Default none:
   * nothing a client writes in those headers is believed.
   */
  trustedProxies: z.array(cidr).default([]),
  /**
   * Refusals of credentials (unknown, expired, revoked, disabled or malformed tokens) counted per
   * client address, shared by all replicas through Redis: past `maxFailures` in one `window`, the
   * address gets 429 with `Retry-After` until the window ends. A valid credential is never counted.
   */
  authLimiter: z
    .strictObject({
      /** On by default. */
      enabled: z.boolean().default(true),
      /** Refusals per address per window before it is cut. */
      maxFailures: z.number().int().min(1).default(600),
      /** The counting window (a fixed window: counts reset when it ends). */
      window: duration.default(60_000),
    })
    .prefault({}),
  forward: z
    .strictObject({
      /** Time to connect to the upstream before 504. */
      connectTimeout: duration.default(5_000),
      /** Time from sending the request to the upstream's response headers before 504. */
      headersTimeout: duration.default(60_000),
      /** An upstream body that sends nothing for this long is cut (the client sees a truncated response). */
      idleTimeout: duration.default(60_000),
      /** Idle keep-alive sockets to the upstream are closed after this (keep it below the upstream's). */
      keepAliveTimeout: duration.default(4_000),
      /** Most concurrent sockets per upstream host. */
      maxSockets: z.number().int().min(1).default(256),
    })
    .prefault({}),
  tokens: z
    .strictObject({
      /** Prefix of newly minted secrets; lets scanners and tokengate spot them. */
      prefix: z
        .string()
        .regex(/^[a-z][a-z0-9]{1,9}_$/, 'expected lowercase letters/digits ending in "_", like "tg_"')
        .default('tg_'),
      /** Accept secrets without the prefix/checksum (tokens imported from another system). */
      allowLegacy: z.boolean().default(true),
      /**
       * A key for a keyed checksum (HMAC-SHA256) in newly minted secrets, so a forged well-formed
       * secret is refused without a Redis call; usually `${TOKENGATE_CHECKSUM_KEY}`, at least 32
       * characters. Without it, the checksum is a plain sha256 anyone can compute.
       */
      checksumKey: z.string().min(32, 'the checksum key must be at least 32 characters').optional(),
      /** Keys that minted secrets still in use after a rotation: accepted, never used to mint. */
      previousChecksumKeys: z.array(z.string().min(32)).default([]),
      /**
       * With `checksumKey` set, still accept prefixed secrets minted without a key (before it was
       * set). Turn off once they have expired or been reissued: only then is a forged secret refused
       * without a Redis call.
       */
      allowUnkeyed: z.boolean().default(true),
      /** Redis keeps a record this long after its expiry, so `token show` can still explain it. */
      expiredGrace: duration.default(7 * 86_400_000),
      /** Longest lifetime of a new token: `token create` and the admin API refuse later expiries. */
      maxLifetime: duration.default(365 * 86_400_000),
      /** `last used` is written at most once per token per this interval (batched); 0 = not recorded. */
      lastUsedInterval: duration.default(60_000),
    })
    .prefault({}),
  /** User records (`tokengate user …`, admin API `/users`). */
  users: z
    .strictObject({
      /**
       * `required`: tokens are created only for users with an active record. `optional`: also for
       * users without one. Either way a user record, where one exists, is enforced (a deactivated
       * or expired user's tokens are refused).
       */
      registry: z.enum(['optional', 'required']).default('optional'),
    })
    .prefault({}),
  /**
   * The admin HTTP API (admin/api.ts): token and membership operations as JSON, on its own
   * listener. Off unless this section is present. Changes to it need a restart (not SIGHUP).
   */
  admin: z
    .strictObject({
      /** Interface to listen on. Keep it private (loopback, or a management network). */
      host: z.string().default('127.0.0.1'),
      /** Port of the admin listener (0 picks a free one). */
      port,
      /**
       * The key clients send as `Authorization: Bearer <key>`; usually `${TOKENGATE_ADMIN_KEY}`.
       * At least 32 characters (e.g. `openssl rand -base64 32`): it can mint tokens for any album.
       */
      key: z
        .string()
        .min(32, 'the admin key must be at least 32 characters (e.g. `openssl rand -base64 32`)'),
    })
    .optional(),
  /**
   * The OAuth 2.0 token endpoint (RFC 6749 §6) on the public listener: `POST <tokenPath>` with
   * `grant_type=refresh_token` trades a refresh token (`token create --refresh`) for a new access
   * token and a new refresh token. Answered by tokengate itself, never forwarded.
   */
  oauth: z
    .strictObject({
      /** Off: the path is no longer answered (it then falls through to the mounts, as any path). */
      enabled: z.boolean().default(true),
      /** Path of the token endpoint on the public listener. */
      tokenPath: z
        .string()
        .regex(/^\/[A-Za-z0-9._~\-/]*[^/]$/, 'expected a path like "/oauth/token"')
        .default('/oauth/token'),
      /** A superseded refresh token of an offline (never expiring) family is still recognised as reuse for this long. */
      reuseWindow: duration.default(90 * 86_400_000),
    })
    .prefault({}),
  /**
   * Self-service album tokens (KHEOPS): a user token may `POST <mount>/tokens` to create an album
   * token for an album its user belongs to, `GET <mount>/tokens` to list its user's tokens and
   * `POST <mount>/tokens/{id}/revoke` to revoke one of them. Answered by tokengate itself.
   */
  selfService: z
    .strictObject({
      /** Off by default: on a generic API mount, `<mount>/tokens` might be a path of the upstream. */
      enabled: z.boolean().default(false),
      /** Mount paths where it is answered; empty = every mount. */
      mounts: z.array(z.string()).default([]),
      /** Longest lifetime of a self-service album token (never past the user token's own expiry either). */
      maxLifetime: duration.default(30 * 86_400_000),
    })
    .prefault({}),
  /**
   * The decision endpoint on the public listener, for nginx `auth_request`, Traefik `forwardAuth`
   * and Envoy `ext_authz` (HTTP service, path prefix): answers 200 with the decision as headers
   * (`X-Tokengate-Upstream-Uri`, the identity headers) or the refusal the proxy would give, from
   * the same stages as the proxy. Answered by tokengate itself, never forwarded.
   */
  decisionEndpoint: z
    .strictObject({
      /** Off: the path is no longer answered (it then falls through to the mounts, as any path). */
      enabled: z.boolean().default(true),
      /** Path of the endpoint; Envoy's form appends the original path to it. */
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~\-/]*[^/]$/, 'expected a path like "/_tokengate/decide"')
        .default('/_tokengate/decide'),
    })
    .prefault({}),
  /** The audit trail of token and membership changes (a Redis stream, `<keyPrefix>audit`). */
  audit: z
    .strictObject({
      /** About how many entries Redis keeps (older ones are trimmed, `XADD MAXLEN ~`). */
      maxLen: z.number().int().min(1).default(100_000),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** One JSON line per request (`msg: "request"`). Off leaves errors and lifecycle lines. */
      access: z.boolean().default(true),
    })
    .prefault({}),
  /** The operations listener: GET /metrics (Prometheus), /healthz, /readyz. Keep it off the public network. */
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: z.string().default('127.0.0.1'),
      port: port.default(9464),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** On SIGTERM/SIGINT, in-flight requests (a long download too) get this long to finish; then they are cut. */
      deadline: duration.default(30_000),
    })
    .prefault({}),
})

/** The validated configuration, durations in milliseconds. */
export type Config = z.infer<typeof configSchema>
