// The CLI side of token selection: the filter flags `token list` and the bulk commands share,
// their mapping to the input schema of admin/token-query.ts (the admin API's `GET /tokens` query
// and `{filter}`), and the list's two tables (within 100 columns, or `--wide`).
import { many, optional, repeated, str, type Values } from './cli-command.js'
import { attrsCell, shorten } from './cli-output.js'
import type { TokenFilterInput, TokenQueryInput } from './token-query.js'
import type { TokenInfo } from './token-view.js'

/** The filter flags of `token list` and the bulk commands (`--filter`). */
export const FILTER_OPTIONS = {
  user: str,
  album: str,
  kind: str,
  status: str,
  attr: many,
  'created-before': str,
  'created-after': str,
  'expires-before': str,
  'expires-after': str,
  'unused-since': str,
} as const

export const FILTER_USAGE = `filters (every one given must hold; WHEN is an ISO date or a duration back from now, 7d):
  --user ID           tokens of this user
  --album ID          tokens pinned to this album
  --kind KIND         album, user or api
  --status STATUS     active, expired, revoked or disabled
  --attr KEY=VALUE    with this attribute (repeatable)
  --created-before WHEN, --created-after WHEN
  --expires-before WHEN, --expires-after WHEN
  --unused-since WHEN not used since WHEN (never used included)`

/** The filter flags as the input schema the admin API's query and `{filter}` share. */
export function filterInput(v: Values): TokenFilterInput {
  const raw: TokenFilterInput = {}
  for (const key of ['user', 'album', 'kind', 'status'] as const) {
    const value = optional(v, key)
    if (value !== undefined) raw[key] = value
  }
  const attrs = repeated(v, 'attr')
  if (attrs.length) raw.attr = attrs
  const dates = {
    'created-before': 'createdBefore',
    'created-after': 'createdAfter',
    'expires-before': 'expiresBefore',
    'expires-after': 'expiresAfter',
    'unused-since': 'unusedSince',
  } as const
  for (const [flag, field] of Object.entries(dates)) {
    const value = optional(v, flag)
    if (value !== undefined) raw[field] = value
  }
  return raw
}

/** `token list`'s flags as the query schema `GET /tokens` shares. */
export function queryInput(v: Values): TokenQueryInput {
  const raw: TokenQueryInput = filterInput(v)
  for (const key of ['sort', 'limit', 'cursor'] as const) {
    const value = optional(v, key)
    if (value !== undefined) raw[key] = value
  }
  if (v.desc) raw.desc = true
  return raw
}

export const day = (iso: string | null) => (iso ? iso.slice(0, 10) : '-')

/** The default table: within 100 columns, long values shortened. */
export function narrowRows(items: TokenInfo[]): string[][] {
  return [
    ['ID', 'KIND', 'STATUS', 'USER', 'ALBUM', 'CREATED', 'EXPIRES', 'LAST USED'],
    ...items.map((t) => [
      shorten(t.id, 20),
      t.kind,
      t.status,
      shorten(t.user || '-', 11),
      shorten(t.album || '-', 11),
      day(t.createdAt),
      day(t.expiresAt),
      day(t.lastUsedAt),
    ]),
  ]
}

/** `--wide`: every column, in full. */
export function wideRows(items: TokenInfo[]): string[][] {
  return [
    [
      'ID',
      'KIND',
      'STATUS',
      'USER',
      'ALBUM',
      'PERMS',
      'ATTRS',
      'CREATED',
      'EXPIRES',
      'LAST USED',
      'DESCRIPTION',
    ],
    ...items.map((t) => [
      t.id,
      t.kind,
      t.status,
      t.user || '-',
      t.album || '-',
      t.perms.join(','),
      attrsCell(t.attrs),
      t.createdAt,
      t.expiresAt,
      t.lastUsedAt ?? '-',
      t.description || '-',
    ]),
  ]
}
