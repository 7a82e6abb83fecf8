// `tokengate token create … --refresh`: the refresh options of the create command (admin/cli.ts
// adds them to its own), their precheck and what is printed. The operations are in
// admin/refresh.ts; this file only turns flags into RefreshOptions and the result into text/JSON.
import { AdminInputError } from './input-error.js'
import {
  DEFAULT_ACCESS_TTL,
  DEFAULT_CLIENT_ID,
  DEFAULT_REFRESH_EXPIRES,
  type RefreshOptions,
  resolveRefresh,
} from './refresh.js'
import { type CreateInput, type TokenAdmin, validateCreate } from './tokens.js'

type Values = Record<string, string | boolean | undefined>

interface Out {
  line: (s: string) => void
  json: (value: unknown) => void
  table: (rows: string[][], indent?: string) => void
}

/** The flags create gains. */
export const REFRESH_FLAGS = {
  refresh: { type: 'boolean' },
  'client-id': { type: 'string' },
  offline: { type: 'boolean' },
  'access-ttl': { type: 'string' },
  'refresh-expires': { type: 'string' },
} as const

/** Lines for create's usage text. */
export const REFRESH_USAGE = `  --refresh              also mint a refresh token (user and api tokens; OAuth 2.0, POST
                         oauth.tokenPath with grant_type=refresh_token); no --expires then
  --client-id ID         the client_id the refresh token is bound to (default ${DEFAULT_CLIENT_ID})
  --access-ttl DURATION  lifetime of each access token (default ${DEFAULT_ACCESS_TTL})
  --refresh-expires DUR  lifetime of the refresh token (default ${DEFAULT_REFRESH_EXPIRES})
  --offline              a refresh token that never expires (refreshExpiresAt: null)`

/** Whether a create command asks for a refresh token (a refresh-only flag without --refresh is a mistake). */
export function wantsRefresh(v: Values): boolean {
  if (v.refresh) return true
  for (const flag of ['client-id', 'offline', 'access-ttl', 'refresh-expires'] as const) {
    if (v[flag] !== undefined) throw new AdminInputError(`--${flag} goes with --refresh`, 'refresh')
  }
  return false
}

function refreshOptions(v: Values): RefreshOptions {
  const opts: RefreshOptions = {}
  if (typeof v['client-id'] === 'string') opts.clientId = v['client-id']
  if (v.offline) opts.offline = true
  if (typeof v['access-ttl'] === 'string') opts.accessTtl = v['access-ttl']
  if (typeof v['refresh-expires'] === 'string') opts.refreshExpires = v['refresh-expires']
  return opts
}

/** Every check of create --refresh that needs no Redis. */
export function precheckRefresh(input: CreateInput, v: Values): void {
  const now = Date.now()
  const r = resolveRefresh(input, refreshOptions(v), now)
  validateCreate({ ...input, expiresAt: now + r.accessTtl }, now)
}

/** Create the tokens and print them: the secrets are shown once. */
export async function runRefreshCreate(
  admin: TokenAdmin,
  input: CreateInput,
  v: Values,
  out: Out,
): Promise<void> {
  const created = await admin.refresh.create(input, refreshOptions(v))
  if (v.json) return out.json(created)
  out.line('Tokens created. Copy both secrets now: they will not be shown again.')
  out.line('')
  out.table(
    [
      ['token', created.token],
      ['refresh token', created.refreshToken],
      ['id', created.id],
      ['refresh token id', created.refreshTokenId],
      ['kind', created.kind],
      ['user', created.user || '-'],
      ['client id', created.clientId],
      ['expires', created.expiresAt],
      ['refresh expires', created.refreshExpiresAt ?? 'never (offline)'],
    ],
    '  ',
  )
}
