// The admin HTTP API's route table (admin/api.ts runs it): each route is one admin operation, its
// allowed query parameters and body fields, and how the body maps to the input schemas the CLI
// shares (admin/token-input.ts, admin/user-input.ts). No check of its own beyond value types.
import type { JsonBody } from './api-http.js'
import { AUDIT_FIELDS, auditQuery } from './audit.js'
import { AdminInputError, AdminNotFound } from './input-error.js'
import { openApiFor } from './openapi.js'
import { SET_PAGE_FIELDS } from './set-page.js'
import type { BulkTarget } from './token-bulk.js'
import {
  CREATE_FIELDS,
  createRefreshSchema,
  createTokenSchema,
  parseInput,
  UPDATE_FIELDS,
  updateTokenSchema,
} from './token-input.js'
import { QUERY_FIELDS, tokenFilterSchema } from './token-query.js'
import type { TokenAdmin } from './tokens.js'
import { USER_FIELDS, userSchema } from './user-input.js'

export interface Call {
  /** TokenAdmin recording changes as this request's actor. */
  admin: TokenAdmin
  /** The path parameters, in order, percent-decoded. */
  params: string[]
  query: Record<string, string>
  body: JsonBody | undefined
}

export interface Endpoint {
  /** Allowed query parameters (others are refused). */
  query?: readonly string[]
  /** Allowed body fields (others are refused; none when absent). */
  body?: readonly string[]
  run: (call: Call) => Promise<{ status: number; body: unknown; headers?: Record<string, string> }>
}

export interface Route {
  /** `/tokens/:id/revoke`: `:name` segments are parameters. */
  pattern: string
  methods: Record<string, Endpoint>
}

const ok = (body: unknown) => ({ status: 200, body })

/** The admin API's version in its OpenAPI description. */
const API_VERSION = '1'

/** `{ids}` or `{filter}` of the bulk routes (one of them). */
function bulkBody(body: JsonBody | undefined): BulkTarget {
  const ids = body?.ids
  const filter = body?.filter
  if ((ids === undefined) === (filter === undefined))
    throw new AdminInputError(
      'give "ids" (an array of token ids) or "filter" (an object), one of them',
      'ids',
    )
  if (ids !== undefined) {
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string'))
      throw new AdminInputError('"ids" must be an array of token ids', 'ids')
    return { ids: ids as string[] }
  }
  return { filter: parseInput(tokenFilterSchema, filter) }
}

function dryRun(body: JsonBody | undefined): boolean {
  const value = body?.dryRun
  if (value !== undefined && typeof value !== 'boolean')
    throw new AdminInputError('"dryRun" must be true or false', 'dryRun')
  return value === true
}

/** The routes: the CLI's commands, one for one. */
export const ROUTES: Route[] = [
  {
    pattern: '/tokens',
    methods: {
      POST: {
        body: CREATE_FIELDS,
        run: async ({ admin, body }) => {
          const { refresh, ...fields } = body ?? {}
          const input = parseInput(createTokenSchema, fields)
          // The schema's object is RefreshOptions as it is (same names); true: the defaults.
          const parsed = parseInput(createRefreshSchema, { refresh }).refresh
          const options = parsed === true ? {} : parsed || null
          const created = await (options ? admin.refresh.create(input, options) : admin.create(input)).catch(
            (err: unknown) => {
              // TokenAdmin names the expiry `expires` (the CLI flag): point at the field that was sent.
              if (err instanceof AdminInputError && err.field === 'expires')
                throw new AdminInputError(
                  err.message,
                  body?.expiresIn === undefined ? 'expiresAt' : 'expiresIn',
                )
              throw err
            },
          )
          return {
            status: 201,
            body: created,
            headers: { location: `/tokens/${encodeURIComponent(created.id)}` },
          }
        },
      },
      GET: {
        query: QUERY_FIELDS,
        run: async ({ admin, query }) => ok(await admin.listPage(query)),
      },
    },
  },
  ...(['revoke', 'disable', 'enable', 'delete'] as const).map((action) => ({
    pattern: `/tokens/${action}`,
    methods: {
      POST: {
        body: ['ids', 'filter', 'dryRun'],
        run: async ({ admin, body }: Call) =>
          ok(await admin.bulk.apply(action, bulkBody(body), dryRun(body))),
      },
    },
  })),
  {
    pattern: '/tokens/identify',
    methods: {
      POST: {
        body: ['secret', 'revoke'],
        run: async ({ admin, body }) => {
          const { secret, revoke } = body ?? {}
          if (typeof secret !== 'string')
            throw new AdminInputError('"secret" (the token secret to trace) is required', 'secret')
          if (revoke !== undefined && typeof revoke !== 'boolean')
            throw new AdminInputError('"revoke" must be true or false', 'revoke')
          return ok(await admin.identify(secret, { revoke: revoke === true }))
        },
      },
    },
  },
  {
    pattern: '/tokens/:id',
    methods: {
      GET: {
        run: async ({ admin, params: [id = ''] }) => {
          const info = await admin.showAny(id)
          if (!info) throw new AdminNotFound('no token with that id', 'id')
          return ok(info)
        },
      },
      PATCH: {
        body: UPDATE_FIELDS,
        run: async ({ admin, params: [id = ''], body }) =>
          ok(await admin.grants.updateGrants(id, parseInput(updateTokenSchema, body ?? {}))),
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
    pattern: '/users',
    methods: {
      POST: {
        body: ['id', ...USER_FIELDS],
        run: async ({ admin, body }) => {
          const { id, ...fields } = body ?? {}
          if (typeof id !== 'string') throw new AdminInputError('"id" (the user id) is required', 'id')
          const user = await admin.users.add(id, parseInput(userSchema, fields))
          return { status: 201, body: user, headers: { location: `/users/${encodeURIComponent(user.id)}` } }
        },
      },
      GET: { run: async ({ admin }) => ok({ users: await admin.users.list() }) },
    },
  },
  {
    pattern: '/users/:user',
    methods: {
      GET: {
        run: async ({ admin, params: [user = ''] }) => {
          const info = await admin.users.show(user)
          if (!info) throw new AdminNotFound(`no user "${user}"`, 'user')
          return ok(info)
        },
      },
      PATCH: {
        body: USER_FIELDS,
        run: async ({ admin, params: [user = ''], body }) =>
          ok(await admin.users.set(user, parseInput(userSchema, body ?? {}))),
      },
    },
  },
  {
    pattern: '/users/:user/deactivate',
    methods: { POST: { run: (c) => c.admin.users.deactivate(c.params[0] ?? '').then(ok) } },
  },
  {
    pattern: '/users/:user/activate',
    methods: { POST: { run: (c) => c.admin.users.activate(c.params[0] ?? '').then(ok) } },
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
    pattern: '/albums/:album/members',
    methods: {
      GET: {
        query: SET_PAGE_FIELDS,
        run: async ({ admin, params: [album = ''], query }) => ok(await admin.albumMembers(album, query)),
      },
    },
  },
  {
    pattern: '/albums/:album/studies',
    methods: {
      GET: {
        query: SET_PAGE_FIELDS,
        run: async ({ admin, params: [album = ''], query }) =>
          ok(await admin.studies({ kind: 'album', album }, query)),
      },
    },
  },
  {
    pattern: '/users/:user/inbox',
    methods: {
      GET: {
        query: SET_PAGE_FIELDS,
        run: async ({ admin, params: [user = ''], query }) =>
          ok(await admin.studies({ kind: 'inbox', user }, query)),
      },
    },
  },
  {
    pattern: '/users/:user/albums',
    methods: {
      GET: {
        query: SET_PAGE_FIELDS,
        run: async ({ admin, params: [user = ''], query }) => ok(await admin.userAlbums(user, query)),
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
    pattern: '/openapi.json',
    methods: { GET: { run: async () => ok(openApiFor(ROUTES, API_VERSION)) } },
  },
  {
    pattern: '/audit',
    methods: {
      GET: {
        query: AUDIT_FIELDS,
        run: async ({ admin, query }) => ok(await admin.audit.page(auditQuery(query, Date.now()))),
      },
    },
  },
]
