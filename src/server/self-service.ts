// Self-service album tokens (KHEOPS): a user token creates album tokens for albums its user
// belongs to (`POST <mount>/tokens`), lists its user's tokens (`GET <mount>/tokens`, never a secret)
// and revokes one of them (`POST <mount>/tokens/{id}/revoke`). Answered by tokengate itself on the
// public listener, never forwarded; on when `selfService.enabled`. The token operations and their
// audit are TokenAdmin's (admin/tokens.ts), recorded as actor `user:<user>` with the calling token's
// id. An album or api token can never mint (403); permissions and expiry never exceed the caller's.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sendJson } from '../admin/api-http.js'
import { AdminInputError } from '../admin/input-error.js'
import { type CreateInput, type TokenAdmin, validateCreate } from '../admin/tokens.js'
import { extractCredential } from '../credential/extract.js'
import type { SecretPolicy } from '../credential/secret.js'
import { BadRequest, Forbidden, OutOfScope, RouteNotFound } from '../errors.js'
import { checkValid } from '../policy/decide.js'
import { isValidTokenId } from '../token/ids.js'
import type { TokenRecord } from '../token/record.js'
import type { TokenStore } from '../token/store.js'
import { hasMediaType, readBody } from './read-body.js'

/** A create request is a few hundred bytes. */
export const SELF_SERVICE_BODY_LIMIT = 16 * 1024

const FIELDS = new Set(['album', 'perms', 'expiresIn', 'expiresAt', 'description'])
const REVOKE_PATH = /^\/([^/?#]+)\/revoke(?:\?.*)?$/

export interface SelfServiceDeps {
  admin: TokenAdmin
  store: Pick<TokenStore, 'lookup' | 'isAlbumMember'>
  secrets: SecretPolicy
  /** `selfService.maxLifetime` (ms). */
  maxLifetime: number
  now: () => number
}

/**
 * Answer `<mount>/tokens` (rest = '') or `<mount>/tokens/…` (rest = what follows `/tokens`).
 * Throws the GateErrors the pipeline answers.
 */
export async function handleSelfService(
  req: IncomingMessage,
  res: ServerResponse,
  rest: string,
  deps: SelfServiceDeps,
): Promise<void> {
  const rawUrl = req.url ?? '/'
  const revoke = rest ? REVOKE_PATH.exec(rest) : null
  const method = req.method ?? 'GET'
  const known = rest ? revoke !== null && method === 'POST' : method === 'GET' || method === 'POST'
  // Unknown method or path: as any path no rule matches, before a token lookup.
  if (!known) throw new RouteNotFound('no_rule')
  const q = rawUrl.indexOf('?')
  const { hash } = extractCredential(
    { headers: req.headers, rawHeaders: req.rawHeaders, rawUrl },
    { query: q === -1 ? '' : rawUrl.slice(q + 1) },
    deps.secrets,
  )
  const record = await deps.store.lookup(hash)
  const now = deps.now()
  checkValid(record, now)
  if (record.kind !== 'user') throw new Forbidden('cannot_mint', record.id)
  const admin = deps.admin.withActor({ name: `user:${record.user}`, client: `token:${record.id}` })

  if (revoke) {
    const id = revoke[1] as string
    // Token ids need no escaping: an escaped one is no id tokengate made.
    const info = isValidTokenId(id) ? await admin.show(id) : null
    if (!info || info.user !== record.user) throw new OutOfScope('not_own_token', record.id)
    return sendJson(res, 200, await admin.revoke(id))
  }
  if (method === 'GET') return sendJson(res, 200, await admin.list({ user: record.user }))
  const input = await readCreate(req, record)
  let valid: ReturnType<typeof validateCreate>
  try {
    valid = validateCreate(input, now)
  } catch (err) {
    if (err instanceof AdminInputError) throw new BadRequest('bad_input', err.message)
    throw err
  }
  if (valid.expiresAt > Math.min(record.expiresAt, now + deps.maxLifetime))
    throw new BadRequest('expiry_too_long', record.id)
  // Membership first: a refusal says nothing about an album the user is not in.
  if (!(await deps.store.isAlbumMember(record.user, valid.album)))
    throw new OutOfScope('not_album_member', record.id)
  for (const perm of valid.perms) {
    if (!record.perms.has(perm)) throw new Forbidden('perms_too_wide', record.id)
  }
  const { expiresIn: _relative, ...fixed } = input
  const created = await admin.create({ ...fixed, expiresAt: valid.expiresAt })
  sendJson(res, 201, created)
}

/** The create body as TokenAdmin's input: an album token of the caller's user. */
async function readCreate(req: IncomingMessage, caller: TokenRecord): Promise<CreateInput> {
  if (!hasMediaType(req, 'application/json')) throw new BadRequest('bad_body')
  const bytes = await readBody(req, SELF_SERVICE_BODY_LIMIT)
  let body: unknown
  try {
    body = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new BadRequest('bad_body')
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('bad_body')
  const b = body as Record<string, unknown>
  for (const key of Object.keys(b)) if (!FIELDS.has(key)) throw new BadRequest('bad_body')
  const str = (v: unknown) => v === undefined || typeof v === 'string'
  const permsOk =
    b.perms === undefined ||
    typeof b.perms === 'string' ||
    (Array.isArray(b.perms) && b.perms.every((p) => typeof p === 'string'))
  const expiresAtOk =
    b.expiresAt === undefined || typeof b.expiresAt === 'string' || typeof b.expiresAt === 'number'
  if (!str(b.album) || !str(b.expiresIn) || !str(b.description) || !permsOk || !expiresAtOk)
    throw new BadRequest('bad_body')
  const input: CreateInput = { kind: 'album', user: caller.user }
  if (b.album !== undefined) input.album = b.album as string
  if (b.perms !== undefined) input.perms = b.perms as string | string[]
  if (b.expiresIn !== undefined) input.expiresIn = b.expiresIn as string
  if (b.expiresAt !== undefined) input.expiresAt = b.expiresAt as string | number
  if (b.description !== undefined) input.description = b.description as string
  return input
}
