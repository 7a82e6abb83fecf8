// The config schema: the one source of config types (`type Config` is inferred, never written by
// hand). Each key's documentation sits beside it, and config/tokengate.yaml repeats it for operators.
import { z } from 'zod'
import { parseDuration } from './duration.js'

/** A duration such as "30s", "5m", "800ms" or a number of milliseconds; parsed to milliseconds. */
const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value)
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like "30s", "5m" or "800ms", got "${value}"`,
    })
    return z.NEVER
  }
  return ms
})

const httpUrl = z.string().refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), {
  message: 'expected an http:// or https:// URL',
})

const port = z.number().int().min(0).max(65535)

/** The four permissions of DESIGN §3; a route rule names the one a request needs. */
export const ACTIONS = ['read', 'write', 'download', 'appropriate'] as const
export const action = z.enum(ACTIONS)

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/** One rule: method(s) + path pattern (relative to the mount) → the action it needs. First match wins. */
const rule = z.strictObject({
  /** HTTP methods this rule applies to; `*` for any. */
  methods: z.union([z.literal('*'), z.array(z.enum(METHODS)).min(1)]),
  /** Path under the mount (after any /link/<token>/): `*` matches one segment, `**` any number (even none). */
  path: z.string().startsWith('/', 'a rule path starts with "/"'),
  /** The permission the request needs. */
  action,
})
export type RuleConfig = z.infer<typeof rule>

/**
 * DICOMweb defaults (PS3.18): QIDO/WADO reads, STOW writes, DELETE writes, KHEOPS-style
 * `PUT /studies/{uid}` (add to album or inbox) needs `appropriate`, WADO-URI at /wado.
 */
export const DICOMWEB_RULES: RuleConfig[] = [
  { methods: ['PUT'], path: '/studies/*', action: 'appropriate' },
  { methods: ['PUT'], path: '/studies/*/series/*', action: 'appropriate' },
  { methods: ['GET', 'HEAD'], path: '/studies/**', action: 'read' },
  { methods: ['GET', 'HEAD'], path: '/series/**', action: 'read' },
  { methods: ['GET', 'HEAD'], path: '/instances/**', action: 'read' },
  { methods: ['POST'], path: '/studies/**', action: 'write' },
  { methods: ['DELETE'], path: '/studies/**', action: 'write' },
  { methods: ['GET', 'HEAD'], path: '/wado', action: 'read' },
]

const upstreamAuth = z.union([
  z.strictObject({ basic: z.strictObject({ user: z.string(), password: z.string() }) }),
  z.strictObject({ bearer: z.string().min(1) }),
  z.strictObject({ header: z.strictObject({ name: z.string().min(1), value: z.string() }) }),
])

const mount = z.strictObject({
  /** Public path prefix, e.g. `/api`. */
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'expected a path like "/api"')
    .transform((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p)),
  /** Where requests under the mount go, e.g. the PACS DICOMweb root `http://127.0.0.1:8042/dicom-web`. */
  upstream: httpUrl,
  /** Where `<mount>/wado` (WADO-URI) goes, e.g. `http://127.0.0.1:8042/wado`. Without it, /wado goes to `upstream`. */
  wado: httpUrl.optional(),
  /**
   * Re-encode WADO-URI query values minimally before forwarding (`image%2Fjpeg` → `image/jpeg`).
   * Orthanc 1.10 rejects a percent-encoded `contentType`; other upstreams need nothing. Default off.
   */
  wadoNormalizeQuery: z.boolean().default(false),
  /** Method + path rules → action. Omitted: the DICOMweb defaults. A path no rule matches is 404. */
  rules: z.array(rule).min(1).optional(),
  /** Credentials tokengate sends to this upstream (the client's Authorization never goes through). */
  upstreamAuth: upstreamAuth.optional(),
})
export type MountConfig = z.infer<typeof mount>

export const configSchema = z.strictObject({
  /** The public listener. */
  listen: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: port.default(8080),
    })
    .prefault({}),
  redis: z
    .strictObject({
      /** Single-node Redis URL (`redis://[:password@]host:port[/db]`, `rediss://` for TLS). */
      url: z.string().default('redis://127.0.0.1:6379'),
      /** Prefix of every key and of the invalidation channel. */
      keyPrefix: z.string().default('tg:'),
      /** Time allowed for one Redis command before the request fails closed with 503. */
      commandTimeout: duration.default(1000),
      /** Time allowed to (re)connect. */
      connectTimeout: duration.default(2000),
    })
    .prefault({}),
  /** Public mounts, longest path first when they nest. */
  mounts: z.array(mount).min(1, 'at least one mount is needed'),
  /** `query`: the upstream understands album/inbox query parameters (KHEOPS-like). `studies`: see DESIGN §4. */
  scoping: z.enum(['query', 'studies']).default('query'),
  cache: z
    .strictObject({
      /** Most token records kept in memory. 0 disables the cache (every request asks Redis). */
      max: z.number().int().min(0).default(100_000),
      /** How long a record may be served from memory; the safety net behind pub/sub invalidation. */
      ttl: duration.default(30_000),
      /** How long an unknown token is remembered as unknown, so garbage cannot flood Redis. */
      negativeTtl: duration.default(5_000),
    })
    .prefault({}),
  /** Headers that tell the upstream who is asking. Client-sent copies are always stripped. */
  identityHeaders: z
    .strictObject({
      user: z.string().default('X-Tokengate-User'),
      tokenId: z.string().default('X-Tokengate-Token-Id'),
      scope: z.string().default('X-Tokengate-Scope'),
      /** Further client headers to strip before forwarding (e.g. `X-Remote-User` an upstream trusts). */
      strip: z.array(z.string()).default([]),
    })
    .prefault({}),
  forward: z
    .strictObject({
      /**
       * The forwarding implementation: `http-proxy` (http-proxy-3 over node:http agents) or `undici`
       * (undici's dispatcher: less CPU per request). Both stream, time out and fail the same way.
       */
      engine: z.enum(['http-proxy', 'undici']).default('http-proxy'),
      /** Time to connect to the upstream before 504. */
      connectTimeout: duration.default(5_000),
      /** Time from sending the request to the upstream's response headers before 504. */
      headersTimeout: duration.default(60_000),
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
      /** Redis keeps a record this long after its expiry, so `token show` can still explain it. */
      expiredGrace: duration.default(7 * 86_400_000),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
})

/** The validated configuration, durations in milliseconds. */
export type Config = z.infer<typeof configSchema>
