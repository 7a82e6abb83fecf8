// Admin input, token listing and bulk selection: the one schema of `token list`'s filters, sort and
// page (`--user`, `--status`, `--created-before`, `--sort`, `--limit`, `--cursor`, …), shared by the
// CLI (flags mapped in admin/token-commands.ts) and the admin API (`GET /tokens` query, and the
// `{filter}` of `POST /tokens/revoke|disable|enable`). Pure: no I/O; admin/token-listing.ts walks
// Redis with the result. Problems throw AdminInputError naming the JSON field.
import { z } from 'zod'
import { parseDuration, parseIsoDate } from '../config/duration.js'
import type { TokenRecord } from '../token/record.js'
import { attrsFromPairs } from './attrs-input.js'
import { checkName } from './id-input.js'
import { AdminInputError } from './input-error.js'
import { statusOf, type TokenStatus } from './token-view.js'

export const DEFAULT_PAGE = 100
export const MAX_PAGE = 1000
export const SORTS = ['created', 'expires', 'last-used'] as const
export type TokenSort = (typeof SORTS)[number]
const STATUSES: readonly TokenStatus[] = ['active', 'expired', 'revoked', 'disabled']
const KINDS = ['album', 'user', 'api'] as const

/** Which tokens: every condition given must hold. Dates in ms since the epoch. */
export interface TokenFilter {
  user?: string
  album?: string
  kind?: TokenRecord['kind']
  status?: TokenStatus
  attrs?: [string, string][]
  /** createdAt < createdBefore, createdAt >= createdAfter; the same for expires. */
  createdBefore?: number
  createdAfter?: number
  expiresBefore?: number
  expiresAfter?: number
  /** Not used since then (never used included). */
  unusedSince?: number
}

/** Where a page starts: after `skip` entries of sort key `score` (ties ordered by id, as Redis). */
export interface Cursor {
  score: number
  skip: number
}

export interface TokenQuery {
  filter: TokenFilter
  sort: TokenSort
  desc: boolean
  limit: number
  cursor?: Cursor
}

const text = z.string().optional()
/** The filter fields (the `{filter}` of the bulk routes). */
export const tokenFilterSchema = z.strictObject({
  user: text,
  album: text,
  kind: text,
  status: text,
  /** `key=value`, or several. */
  attr: z.union([z.string(), z.array(z.string())]).optional(),
  createdBefore: text,
  createdAfter: text,
  expiresBefore: text,
  expiresAfter: text,
  unusedSince: text,
})
/** The filter, sort and page (`GET /tokens`'s query). */
export const tokenQuerySchema = tokenFilterSchema.extend({
  sort: text,
  desc: z.union([z.string(), z.boolean()]).optional(),
  limit: z.union([z.string(), z.number()]).optional(),
  cursor: text,
})
export type TokenFilterInput = z.infer<typeof tokenFilterSchema>
export type TokenQueryInput = z.infer<typeof tokenQuerySchema>
export const FILTER_FIELDS = Object.keys(tokenFilterSchema.shape)
export const QUERY_FIELDS = Object.keys(tokenQuerySchema.shape)

const DATE_FIELDS = ['createdBefore', 'createdAfter', 'expiresBefore', 'expiresAfter', 'unusedSince'] as const

/** A date as given: an ISO date, or a duration back from now (`7d`). */
function when(value: string, field: string, now: number): number {
  const t = value.trim()
  const back = /^\d+(\.\d+)?$/.test(t) ? undefined : parseDuration(t)
  const at = back === undefined ? parseIsoDate(t) : now - back
  if (at === undefined)
    throw new AdminInputError(
      `${field} "${value}" is neither a duration back from now like 7d nor an ISO date like 2027-01-31`,
      field,
    )
  return at
}

/** Check the filter fields; dates become ms since the epoch. */
export function parseFilter(input: TokenFilterInput, now: number): TokenFilter {
  const f: TokenFilter = {}
  if (input.user !== undefined) f.user = checkName(input.user, 'user', 'user')
  if (input.album !== undefined) f.album = checkName(input.album, 'album', 'album')
  if (input.kind !== undefined) {
    if (!(KINDS as readonly string[]).includes(input.kind))
      throw new AdminInputError(`kind must be one of ${KINDS.join(', ')}, got "${input.kind}"`, 'kind')
    f.kind = input.kind as TokenRecord['kind']
  }
  if (input.status !== undefined) {
    if (!(STATUSES as readonly string[]).includes(input.status))
      throw new AdminInputError(
        `status must be one of ${STATUSES.join(', ')}, got "${input.status}"`,
        'status',
      )
    f.status = input.status as TokenStatus
  }
  if (input.attr !== undefined) {
    const pairs = Array.isArray(input.attr) ? input.attr : [input.attr]
    f.attrs = Object.entries(attrsFromPairs(pairs, 'attr'))
  }
  for (const field of DATE_FIELDS) {
    const value = input[field]
    if (value !== undefined) f[field] = when(value, field, now)
  }
  return f
}

/** Check the whole query: filter, sort, order, limit (1–1000, default 100) and cursor. */
export function parseQuery(input: TokenQueryInput, now: number): TokenQuery {
  const { sort, desc, limit, cursor, ...filter } = input
  const q: TokenQuery = {
    filter: parseFilter(filter, now),
    sort: 'created',
    desc: false,
    limit: DEFAULT_PAGE,
  }
  if (sort !== undefined) {
    if (!(SORTS as readonly string[]).includes(sort))
      throw new AdminInputError(`sort must be one of ${SORTS.join(', ')}, got "${sort}"`, 'sort')
    q.sort = sort as TokenSort
  }
  if (desc !== undefined) {
    if (desc === true || desc === 'true' || desc === '1' || desc === '') q.desc = true
    else if (desc === false || desc === 'false' || desc === '0') q.desc = false
    else throw new AdminInputError(`desc must be true or false, got "${desc}"`, 'desc')
  }
  if (limit !== undefined) {
    const t = String(limit).trim()
    const n = /^\d+$/.test(t) ? Number(t) : Number.NaN
    if (!(n >= 1 && n <= MAX_PAGE))
      throw new AdminInputError(`limit must be a whole number from 1 to ${MAX_PAGE}, got "${limit}"`, 'limit')
    q.limit = n
  }
  if (cursor !== undefined) q.cursor = decodeCursor(cursor, q)
  return q
}

/** The opaque cursor of the next page; it carries the sort and order it was made for. */
export function encodeCursor(q: Pick<TokenQuery, 'sort' | 'desc'>, c: Cursor): string {
  return Buffer.from(`${q.sort}|${q.desc ? 1 : 0}|${c.score}|${c.skip}`).toString('base64url')
}

export function decodeCursor(value: string, q: Pick<TokenQuery, 'sort' | 'desc'>): Cursor {
  const parts = Buffer.from(value, 'base64url').toString().split('|')
  const [sort, desc, score, skip] = parts
  const c = { score: Number(score), skip: Number(skip) }
  if (parts.length !== 4 || !Number.isSafeInteger(c.score) || !Number.isSafeInteger(c.skip) || c.skip < 0)
    throw new AdminInputError('cursor is not one a listing returned (pass nextCursor back as is)', 'cursor')
  if (sort !== q.sort || desc !== (q.desc ? '1' : '0'))
    throw new AdminInputError(
      'cursor was made for another sort or order: keep sort and desc as they were',
      'cursor',
    )
  return c
}

/** The record's sort key. */
export function sortKey(r: TokenRecord, sort: TokenSort): number {
  return sort === 'created' ? r.createdAt : sort === 'expires' ? r.expiresAt : r.lastUsedAt
}

/** Whether a record passes every condition of the filter at `now`. */
export function matches(r: TokenRecord, f: TokenFilter, now: number): boolean {
  if (f.user !== undefined && r.user !== f.user) return false
  if (f.album !== undefined && r.album !== f.album) return false
  if (f.kind !== undefined && r.kind !== f.kind) return false
  if (f.status !== undefined && statusOf(r, now) !== f.status) return false
  if (f.attrs?.some(([k, v]) => r.attrs[k] !== v)) return false
  if (f.createdBefore !== undefined && !(r.createdAt < f.createdBefore)) return false
  if (f.createdAfter !== undefined && !(r.createdAt >= f.createdAfter)) return false
  if (f.expiresBefore !== undefined && !(r.expiresAt < f.expiresBefore)) return false
  if (f.expiresAfter !== undefined && !(r.expiresAt >= f.expiresAfter)) return false
  if (f.unusedSince !== undefined && r.lastUsedAt >= f.unusedSince) return false
  return true
}

/** Whether the filter selects nothing narrower than "every token". */
export function isEmptyFilter(f: TokenFilter): boolean {
  return Object.values(f).every((v) => v === undefined)
}
