// Admin input, tokens: the one schema of `token create`'s input, shared by the CLI (flags mapped
// to it in admin/token-commands.ts) and the admin API (the JSON body parsed with it in
// admin/api-routes.ts), and every check create makes with no I/O. Problems throw AdminInputError
// naming the field and what to change.
import { z } from 'zod'
import { parseDuration, parseIsoDate } from '../config/duration.js'
import type { Action } from '../route/match.js'
import { LAST_DATE, parsePerms, type TokenRecord } from '../token/record.js'
import { checkAttrs } from './attrs-input.js'
import { mergeGrants, parseGrantInput } from './grant-input.js'
import type { GrantChange } from './grants-ops.js'
import { checkName } from './id-input.js'
import { AdminInputError } from './input-error.js'
import { PERMISSIONS } from './token-view.js'

/**
 * `token create`'s input: the CLI's flags and the admin API's body both become this object. Value
 * types are checked by the schema; meaning (ids, permissions, expiry bounds) by validateCreate, so
 * messages can name the flag and say what to change.
 */
export const createTokenSchema = z.strictObject({
  /** `album` or `user` (checked by validateCreate, with a message naming the choices). */
  kind: z.string().optional(),
  user: z.string().optional(),
  album: z.string().optional(),
  /** `read,write` or `['read', 'write']`; album tokens only (user tokens get every permission). */
  perms: z.union([z.string(), z.array(z.string())]).optional(),
  /** Milliseconds since the epoch, or an ISO 8601 date (`2027-01-31`, `2027-01-31T12:00:00Z`). */
  expiresAt: z.union([z.string(), z.number()]).optional(),
  /** A duration from now, e.g. `30d`, `12h` (a unit is required). */
  expiresIn: z.string().optional(),
  description: z.string().optional(),
  tenant: z.string().optional(),
  /** Attributes over the user's (an empty value drops an inherited one). */
  attrs: z.record(z.string(), z.string()).optional(),
  /** api tokens: grants (`type:id:action[,action]`, or `admin`), policy/grants.ts spelling. */
  grants: z.union([z.string(), z.array(z.string())]).optional(),
})

export type CreateInput = Omit<z.infer<typeof createTokenSchema>, 'kind'> & { kind?: string }

/**
 * `refresh` in the admin API's create body: `true` for the defaults, or the options `token create
 * --refresh` takes as flags (admin/refresh.ts RefreshOptions, same names); absent or false: none.
 */
export const createRefreshSchema = z.strictObject({
  refresh: z
    .union([
      z.boolean(),
      z.strictObject({
        clientId: z.string().optional(),
        offline: z.boolean().optional(),
        accessTtl: z.string().optional(),
        refreshExpires: z.string().optional(),
      }),
    ])
    .optional(),
})

/** The body fields the create schemas take (the admin API refuses others by name). */
export const CREATE_FIELDS = [...Object.keys(createTokenSchema.shape), 'refresh']

/**
 * Parse a value against an admin input schema; a type mismatch becomes AdminInputError naming the
 * field (`"perms" must be …`), as the API answers it.
 */
export function parseInput<T>(schema: z.ZodType<T>, raw: unknown): T {
  const result = schema.safeParse(raw)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  const field = issue?.path.length ? String(issue.path[0]) : undefined
  if (issue?.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? ''
    throw new AdminInputError(`unknown field "${key}"`, key)
  }
  throw new AdminInputError(`"${field ?? 'input'}" ${describeIssue(issue)}`, field)
}

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (issue?.code === 'invalid_type' || issue?.code === 'invalid_union')
    return `has the wrong type (${issue.message.replace(/^Invalid input: /, '')})`
  return issue?.message ?? 'is not valid'
}

/** The fields of a new record, checked; what create stores besides id and createdAt. */
export type ValidCreate = Pick<
  TokenRecord,
  'kind' | 'user' | 'album' | 'perms' | 'expiresAt' | 'description' | 'tenant' | 'grants'
> & {
  /** The token's own attributes (empty values: drop the user's); merged over the user's at create. */
  attrs: Record<string, string>
}

const MAX_DESCRIPTION = 1024
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
/** `tokens.maxLifetime`'s default: Q suggests tokens live at most 12 months. */
export const DEFAULT_MAX_LIFETIME = 365 * 86_400_000

/** A lifetime as the config spells it: whole days as `365d`, else hours, else milliseconds. */
function formatDays(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${ms}ms`
}

/** Bounds of a new token. */
export interface CreateLimits {
  /** Longest lifetime from now, in ms (`tokens.maxLifetime`); none when absent (the CLI's precheck). */
  maxLifetime?: number
}

/**
 * Expiry in milliseconds since the epoch from `expiresAt` or `expiresIn`; mandatory, in the future
 * and at most `limits.maxLifetime` from now (never past the last date a Date can hold).
 */
export function resolveExpiry(
  input: Pick<CreateInput, 'expiresAt' | 'expiresIn'>,
  now: number,
  limits: CreateLimits = {},
): number {
  const hint = 'give --expires as a duration like 30d or 12h, or an ISO date like 2027-01-31'
  if (input.expiresAt !== undefined && input.expiresIn !== undefined) {
    throw new AdminInputError('give either an expiry date or a duration, not both', 'expires')
  }
  let at: number
  if (input.expiresIn !== undefined) {
    const text = String(input.expiresIn).trim()
    const ms = /^\d+(\.\d+)?$/.test(text) ? undefined : parseDuration(text)
    if (ms === undefined)
      throw new AdminInputError(`"${input.expiresIn}" is not a duration; ${hint}`, 'expires')
    if (ms <= 0) throw new AdminInputError(`the duration "${input.expiresIn}" is zero; ${hint}`, 'expires')
    at = now + ms
  } else if (typeof input.expiresAt === 'number') {
    if (!Number.isSafeInteger(input.expiresAt)) {
      throw new AdminInputError(
        `expiresAt must be whole milliseconds since the epoch, got ${input.expiresAt}`,
        'expires',
      )
    }
    at = input.expiresAt
  } else if (typeof input.expiresAt === 'string') {
    const parsed = parseIsoDate(input.expiresAt)
    if (parsed === undefined)
      throw new AdminInputError(`"${input.expiresAt}" is not a date; ${hint}`, 'expires')
    at = parsed
  } else {
    throw new AdminInputError(`an expiry is mandatory; ${hint}`, 'expires')
  }
  if (at <= now) {
    throw new AdminInputError(
      `the expiry ${new Date(at).toISOString()} is not in the future; ${hint}`,
      'expires',
    )
  }
  const max = limits.maxLifetime
  if (max !== undefined && at > now + max) {
    throw new AdminInputError(
      `the expiry is more than ${formatDays(max)} from now, the longest lifetime tokens.maxLifetime allows; choose an earlier expiry`,
      'expires',
    )
  }
  if (at > LAST_DATE) {
    throw new AdminInputError(
      'the expiry lies past the last date a clock can show; choose an earlier one (tokens.maxLifetime bounds it)',
      'expires',
    )
  }
  return at
}

/** Every check create makes, with no I/O: the record fields to store, or AdminInputError. */
export function validateCreate(input: CreateInput, now: number, limits: CreateLimits = {}): ValidCreate {
  const kind = input.kind as string
  if (kind === undefined) throw new AdminInputError('--kind is required: album, user or api', 'kind')
  if (kind !== 'album' && kind !== 'user' && kind !== 'api') {
    throw new AdminInputError(`--kind must be "album", "user" or "api", got "${String(kind)}"`, 'kind')
  }
  const user = input.user === undefined ? '' : checkName(input.user, '--user', 'user')
  const album = input.album === undefined ? '' : checkName(input.album, '--album', 'album')
  const tenant = input.tenant === undefined ? '' : checkName(input.tenant, '--tenant', 'tenant')
  const permText = Array.isArray(input.perms) ? input.perms.join(',') : (input.perms ?? '')
  const { perms, unknown } = parsePerms(permText)
  const description = input.description === undefined ? '' : checkDescription(input.description)
  const attrs = checkAttrs(input.attrs ?? {})

  if (kind === 'api') {
    if (album) throw new AdminInputError('api tokens reach resources, not an album: drop --album', 'album')
    if (permText.trim())
      throw new AdminInputError('api tokens carry grants, not --perms: use --grant', 'perms')
    const grants = mergeGrants([], parseGrantInput(input.grants, 'grants'))
    if (grants.length === 0) {
      throw new AdminInputError(
        'api tokens need at least one grant: add --grant TYPE:ID:ACTION[,ACTION…] (ID or ACTION may be *) or --grant admin',
        'grants',
      )
    }
    const expiresAt = resolveExpiry(input, now, limits)
    return { kind, user, album, perms: new Set<Action>(), expiresAt, description, tenant, grants, attrs }
  }
  if (input.grants !== undefined) {
    throw new AdminInputError('only api tokens carry grants: drop --grant, or use --kind api', 'grants')
  }

  if (kind === 'user') {
    if (!user) throw new AdminInputError('user tokens need a user: add --user ID', 'user')
    if (album) {
      throw new AdminInputError(
        'user tokens are not pinned to an album: drop --album (grant albums with `tokengate album add-member`)',
        'album',
      )
    }
    if (permText.trim()) {
      throw new AdminInputError(
        'user tokens get every permission over what their user may reach: drop --perms',
        'perms',
      )
    }
  } else {
    if (!album) throw new AdminInputError('album tokens need an album: add --album ID', 'album')
    if (unknown.length) {
      throw new AdminInputError(
        `unknown permission${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} in --perms; choose from ${PERMISSIONS.join(', ')}`,
        'perms',
      )
    }
    if (perms.size === 0) {
      throw new AdminInputError(
        `album tokens need at least one permission: add --perms with some of ${PERMISSIONS.join(',')}`,
        'perms',
      )
    }
  }
  return {
    kind,
    user,
    album,
    // Canonical order, as stored (formatPerms), whatever order they were given in.
    perms: new Set(kind === 'user' ? PERMISSIONS : PERMISSIONS.filter((p) => perms.has(p))),
    expiresAt: resolveExpiry(input, now, limits),
    description,
    tenant,
    attrs,
  }
}

/** A description: at most 1024 characters, no control characters (it is shown in tables). */
export function checkDescription(value: unknown): string {
  const text = String(value)
  if (text.length > MAX_DESCRIPTION) {
    throw new AdminInputError(
      `--description is longer than ${MAX_DESCRIPTION} characters; shorten it`,
      'description',
    )
  }
  if (CONTROL.test(text)) {
    throw new AdminInputError(
      '--description contains control characters (newlines, tabs…); remove them',
      'description',
    )
  }
  return text
}

/** `token update`'s input (admin API `PATCH /tokens/{id}`): admin/grants-ops.ts's GrantChange. */
export const updateTokenSchema = z.strictObject({
  /** Grants to add (actions merge into an existing grant). */
  add: z.union([z.string(), z.array(z.string())]).optional(),
  /** Grants, or some of their actions, to remove (`type:id:*` removes the grant whole). */
  remove: z.union([z.string(), z.array(z.string())]).optional(),
  enabled: z.boolean().optional(),
  description: z.string().optional(),
}) satisfies z.ZodType<GrantChange>

export type TokenUpdate = z.infer<typeof updateTokenSchema>

/** The body fields `PATCH /tokens/{id}` takes. */
export const UPDATE_FIELDS = Object.keys(updateTokenSchema.shape)
