// The CLI's presentation: lines, JSON and aligned tables on the CliIO, and the one-token view of
// `token show`. No logic of its own: what to print is decided by the command tables.
import { optional, type Values } from './cli-command.js'
import type { RefreshInfo } from './refresh.js'
import type { SetPageInput } from './set-page.js'
import type { TokenInfo } from './token-view.js'

/** Where the CLI writes; each call is a whole chunk of text, newlines included. */
export interface CliIO {
  stdout: (s: string) => void
  stderr: (s: string) => void
  /** Standard input, read whole (`token identify` takes the secret there, never from argv). */
  stdin?: () => Promise<string>
}

export interface Output {
  line: (s: string) => void
  json: (value: unknown) => void
  /** Rows with aligned columns. */
  table: (rows: string[][], indent?: string) => void
  /** `token show`: a token, or a refresh token family. */
  info: (t: TokenInfo | RefreshInfo) => void
  /** Standard input, whole (at most 64 KiB). */
  input: () => Promise<string>
}

const MAX_INPUT = 64 * 1024

/** The process's standard input, read to its end (a terminal: until Ctrl-D). */
async function processStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('paste the secret, then press Enter and Ctrl-D\n')
  let text = ''
  for await (const chunk of process.stdin) {
    text += String(chunk)
    if (text.length > MAX_INPUT) throw new Error('standard input is longer than 64 KiB')
  }
  return text
}

export function output(io: CliIO): Output {
  const out: Output = {
    input: io.stdin ?? processStdin,
    line: (s) => io.stdout(`${s}\n`),
    json: (value) => io.stdout(`${JSON.stringify(value, null, 2)}\n`),
    table: (rows, indent = '') => {
      const widths: number[] = []
      for (const row of rows) {
        row.forEach((cell, i) => {
          widths[i] = Math.max(widths[i] ?? 0, cell.length)
        })
      }
      const text = rows.map((row) =>
        (
          indent + row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  ')
        ).trimEnd(),
      )
      io.stdout(`${text.join('\n')}\n`)
    },
    info: (t) => out.table(t.kind === 'refresh' ? familyRows(t) : tokenRows(t)),
  }
  return out
}

/** `token show` of a token: every field but the secret, which is never stored. */
function tokenRows(t: TokenInfo): string[][] {
  return [
    ['id', t.id],
    ['status', t.status],
    ['kind', t.kind],
    ['user', t.user || '-'],
    ['album', t.album || '-'],
    ['perms', t.perms.join(',')],
    ['expires', t.expiresAt],
    ['created', t.createdAt],
    ['created by', t.createdBy ?? '-'],
    ['enabled', t.enabled ? 'yes' : 'no'],
    ['revoked', t.revokedAt ?? '-'],
    ['last used', t.lastUsedAt ?? 'never'],
    ['last refused', t.lastRefusedAt ? `${t.lastRefusedAt} (${t.lastRefusedReason})` : 'never'],
    ['attrs', attrsCell(t.attrs)],
    ['description', t.description || '-'],
    ...(t.tenant ? [['tenant', t.tenant]] : []),
  ]
}

/** `token show rtk_…`: a refresh token family (admin/refresh.ts), never its secret. */
function familyRows(t: RefreshInfo): string[][] {
  return [
    ['id', t.id],
    ['status', t.status],
    ['kind', 'refresh'],
    ['mints', `${t.accessKind} tokens`],
    ['user', t.user || '-'],
    ['client', t.clientId],
    ['expires', t.expiresAt ?? 'never (offline)'],
    ['created', t.createdAt],
    ['revoked', t.revokedAt ?? '-'],
  ]
}

export function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** Attributes as one cell: `department=radiology,type=viewer`, or `-`. */
export function attrsCell(attrs: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(attrs).map(([k, v]) => `${k}=${v}`)
  return pairs.length ? pairs.join(',') : '-'
}

/** `--limit` and `--cursor` of the set listings (album members, user albums, album studies). */
export function setPage(v: Values): SetPageInput {
  const page: SetPageInput = {}
  const limit = optional(v, 'limit')
  const cursor = optional(v, 'cursor')
  if (limit !== undefined) page.limit = limit
  if (cursor !== undefined) page.cursor = cursor
  return page
}

/** A set page: one item a line and the next cursor, or `{items, nextCursor}` with --json. */
export function printSetPage(
  out: Output,
  v: Values,
  page: { items: string[]; nextCursor: string | null },
  none: string,
): void {
  if (v.json) {
    out.json(page)
    return
  }
  if (page.items.length === 0) {
    out.line(none)
    return
  }
  for (const item of page.items) out.line(item)
  if (page.nextCursor) out.line(`next page: --cursor ${page.nextCursor}`)
}
