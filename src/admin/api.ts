// The admin HTTP API (DESIGN §1, §6): the token and membership operations of the CLI as JSON, on a
// listener of its own (`admin:` in the config; off without it), for the platform that owns users
// and albums. Every route calls TokenAdmin (admin/tokens.ts), the CLI's code, so no check exists
// twice; this file is the route table and the request loop. Each change is audited as `admin-api`
// with the client's address and also written as a log line (msg "audit"); each request gets one
// "admin request" line naming the route pattern, never the raw path, a body, the admin key, or
// the create answer (which holds the token's secret).
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
  type JsonBody,
  keyDigest,
  optionalString,
  queryParams,
  readJsonBody,
  refusalOf,
  sendJson,
  sendRefusal,
} from './api-http.js'
import { auditQuery } from './audit.js'
import { AdminInputError, AdminNotFound } from './input-error.js'
import { type CreateInput, TokenAdmin } from './tokens.js'

interface Call {
  /** TokenAdmin recording changes as this request's actor. */
  admin: TokenAdmin
  /** The path parameters, in order, percent-decoded. */
  params: string[]
  query: Record<string, string>
  body: JsonBody | undefined
}

interface Endpoint {
  /** Allowed query parameters (others are refused). */
  query?: readonly string[]
  /** Allowed body fields (others are refused; none when absent). */
  body?: readonly string[]
  run: (call: Call) => Promise<{ status: number; body: unknown; headers?: Record<string, string> }>
}

interface Route {
  /** `/tokens/:id/revoke`: `:name` segments are parameters. */
  pattern: string
  methods: Record<string, Endpoint>
}

const CREATE_FIELDS = ['kind', 'user', 'album', 'perms', 'expiresAt', 'expiresIn', 'description', 'tenant']

const ok = (body: unknown) => ({ status: 200, body })

/** The routes: the CLI's commands, one for one. */
const ROUTES: Route[] = [
  {
    pattern: '/tokens',
    methods: {
      POST: {
        body: CREATE_FIELDS,
        run: async ({ admin, body }) => {
          const created = await admin.create(createInput(body)).catch((err: unknown) => {
            // TokenAdmin names the expiry `expires` (the CLI flag): point at the field that was sent.
            if (err instanceof AdminInputError && err.field === 'expires')
              throw new AdminInputError(
                err.message,
                body?.expiresIn === undefined ? 'expiresAt' : 'expiresIn',
              )
            throw err
          })
          return {
            status: 201,
            body: created,
            headers: { location: `/tokens/${encodeURIComponent(created.id)}` },
          }
        },
      },
      GET: {
        query: ['user', 'album'],
        run: async ({ admin, query }) => ok({ tokens: await admin.list(query) }),
      },
    },
  },
  {
    pattern: '/tokens/:id',
    methods: {
      GET: {
        run: async ({ admin, params: [id = ''] }) => {
          const info = await admin.show(id)
          if (!info) throw new AdminNotFound(`no token with id "${id}"`, 'id')
          return ok(info)
        },
      },
    },
  },
  {
    pattern: '/tokens/:id/revoke',
    methods: { POST: { run: (c) => c.admin.revoke(c.params[0] ?? '').then(ok) } },
  },
  {
    pattern: '/tokens/:id/disable',
    methods: { POST: { run: (c) => c.admin.disable(c.params[0] ?? '').then(ok) } },
  },
  {
    pattern: '/tokens/:id/enable',
    methods: { POST: { run: (c) => c.admin.enable(c.params[0] ?? '').then(ok) } },
  },
  {
    pattern: '/users/:user/revoke-tokens',
    methods: {
      POST: {
        run: async ({ admin, params: [user = ''] }) => ok({ user, revoked: await admin.revokeUser(user) }),
      },
    },
  },
  {
    pattern: '/albums/:album/members/:user',
    methods: {
      PUT: {
        run: async ({ admin, params: [album = '', user = ''] }) =>
          ok({ album, user, ...(await admin.addMember(album, user)) }),
      },
      DELETE: {
        run: async ({ admin, params: [album = '', user = ''] }) =>
          ok({ album, user, ...(await admin.removeMember(album, user)) }),
      },
    },
  },
  {
    pattern: '/audit',
    methods: {
      GET: {
        query: ['since', 'limit'],
        run: async ({ admin, query }) =>
          ok({ events: await admin.audit.list(auditQuery(query, Date.now())) }),
      },
    },
  },
]

/** The create body as TokenAdmin's input; value types are checked here, everything else there. */
function createInput(body: JsonBody | undefined): CreateInput {
  const input: CreateInput = { kind: optionalString(body, 'kind') as CreateInput['kind'] }
  for (const field of ['user', 'album', 'description', 'tenant', 'expiresIn'] as const) {
    const value = optionalString(body, field)
    if (value !== undefined) input[field] = value
  }
  const perms = body?.perms
  if (perms !== undefined) {
    if (typeof perms !== 'string' && !(Array.isArray(perms) && perms.every((p) => typeof p === 'string')))
      throw new AdminInputError('"perms" must be a string ("read,write") or an array of strings', 'perms')
    input.perms = perms
  }
  const expiresAt = body?.expiresAt
  if (expiresAt !== undefined) {
    if (typeof expiresAt !== 'string' && typeof expiresAt !== 'number')
      throw new AdminInputError(
        '"expiresAt" must be an ISO date or milliseconds since the epoch',
        'expiresAt',
      )
    input.expiresAt = expiresAt
  }
  return input
}

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
