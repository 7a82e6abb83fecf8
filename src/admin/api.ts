// The admin HTTP API (DESIGN §1, §6): the token, user and membership operations of the CLI as
// JSON, on a listener of its own (`admin:` in the config; off without it), for the platform that
// owns users and albums. Every route (admin/api-routes.ts) calls TokenAdmin (admin/tokens.ts), the
// CLI's code, so no check exists twice; this file is the request loop and the listener. Each
// change is audited as `admin-api` with the client's address and also written as a log line (msg
// "audit"); each request gets one "admin request" line naming the route pattern, never the raw
// path, a body, the admin key, or the create answer (which holds the token's secret).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import { createProxyServer } from '../server/proxy-server.js'
import type { Keys } from '../token/keys.js'
import type { RedisClient } from '../token/redis-client.js'
import {
  AdminRefused,
  authenticate,
  checkFields,
  keyDigest,
  queryParams,
  readJsonBody,
  refusalOf,
  sendJson,
  sendRefusal,
} from './api-http.js'
import { type Endpoint, ROUTES, type Route } from './api-routes.js'
import { TokenAdmin } from './tokens.js'

/** The route and endpoint for a request, with its decoded path parameters. */
function match(method: string, path: string): { route: Route; endpoint: Endpoint; params: string[] } {
  const segments = path.split('/').slice(1)
  for (const route of ROUTES) {
    const pattern = route.pattern.split('/').slice(1)
    if (pattern.length !== segments.length) continue
    const params: string[] = []
    let matches = true
    pattern.forEach((p, i) => {
      const segment = segments[i] ?? ''
      // An empty segment is no parameter (`/tokens/` is no token): such a path matches no route.
      if (p.startsWith(':') && segment) params.push(segment)
      else if (p !== segment) matches = false
    })
    if (!matches) continue
    const endpoint = route.methods[method]
    if (!endpoint) {
      const allow = Object.keys(route.methods).join(', ')
      throw new AdminRefused('method_not_allowed', `${method} is not allowed here; use ${allow}`, undefined, {
        allow,
      })
    }
    return { route, endpoint, params: params.map(decodeParam) }
  }
  throw new AdminRefused('no_route', `no route ${method} ${path} (see the README's Admin API section)`)
}

function decodeParam(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new AdminRefused('invalid_input', 'the path has a malformed percent-escape')
  }
}

export interface AdminHandlerOptions {
  /** The admin key (`admin.key`). */
  key: string
  admin: TokenAdmin
  log: Logger
  /** Whether the Redis connection is up: a failure while it is not is 503, not a bug. */
  storeReady: () => boolean
}

/** The request handler: auth → route → body → TokenAdmin → JSON. Never throws. */
export function createAdminHandler(opts: AdminHandlerOptions) {
  const expected = keyDigest(opts.key)
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const method = req.method ?? 'GET'
    let route: string | undefined
    let refusal: AdminRefused | undefined
    try {
      authenticate(req, expected)
      const [path = '/', search = ''] = (req.url ?? '/').split('?', 2)
      const found = match(method, path)
      route = found.route.pattern
      const query = queryParams(new URLSearchParams(search), found.endpoint.query ?? [])
      const body = await readJsonBody(req)
      checkFields(body, found.endpoint.body ?? [])
      const admin = opts.admin.withActor({ name: 'admin-api', client: req.socket.remoteAddress ?? '' })
      const answer = await found.endpoint.run({ admin, params: found.params, query, body })
      sendJson(res, answer.status, answer.body, answer.headers)
    } catch (err) {
      refusal = refusalOf(err, opts.storeReady)
      // Name, message and stack only: a Redis error's other properties list the command's arguments.
      const e = err as Error
      if (refusal.refusal === 'bug')
        opts.log.error(
          { err: { type: e?.name, message: e?.message, stack: e?.stack }, route },
          'admin api bug',
        )
      else if (refusal.refusal === 'store_unavailable')
        opts.log.warn({ err: e?.message, route }, 'admin api: redis unavailable')
      sendRefusal(req, res, refusal)
    } finally {
      opts.log.info(
        {
          method,
          route,
          status: res.statusCode,
          refusal: refusal?.refusal,
          field: refusal?.field,
          ms: Math.round((performance.now() - started) * 1000) / 1000,
          remote: req.socket.remoteAddress,
        },
        'admin request',
      )
    }
  }
}

export interface AdminApi {
  address: AddressInfo
  /** Stop accepting; resolve when in-flight requests are done or `deadlineMs` passed. */
  close(deadlineMs: number): Promise<void>
}

/** Start the admin listener when `admin` is configured (undefined otherwise). */
export async function startAdminApi(
  config: Config,
  deps: { redis: RedisClient; keys: Keys; log: Logger; now?: () => number },
): Promise<AdminApi | undefined> {
  if (!config.admin) return undefined
  const { log } = deps
  const admin = new TokenAdmin(deps.redis, deps.keys, {
    secretPrefix: config.tokens.prefix,
    checksumKey: config.tokens.checksumKey,
    expiredGrace: config.tokens.expiredGrace,
    maxLifetime: config.tokens.maxLifetime,
    registry: config.users.registry,
    ...(deps.now ? { now: deps.now } : {}),
    actor: { name: 'admin-api' },
    audit: { maxLen: config.audit.maxLen, onRecord: (event) => log.info(event, 'audit') },
  })
  const listener = createProxyServer(
    createAdminHandler({
      key: config.admin.key,
      admin,
      log,
      storeReady: () => deps.redis.status === 'ready',
    }),
    // Admin requests are small: a client that takes longer than this to send one is dropped.
    {
      ...config.listen,
      headersTimeout: Math.min(config.listen.headersTimeout, 30_000),
      requestTimeout: 30_000,
    },
  )
  const address = await listener.listen(config.admin.host, config.admin.port)
  log.info({ host: address.address, port: address.port }, 'admin api listening')
  return { address, close: (deadlineMs) => listener.close(deadlineMs) }
}
