// `tokengate token revoke|disable|enable ID…`, `… --filter [filters] [--dry-run]` and
// `token delete ID…`: the command table entries of the bulk changes (admin/token-bulk.ts), one
// builder for the four. A single id keeps the one-token path of admin/tokens.ts (refresh ids,
// `no token` errors); several ids or a filter go through BulkOps, audited as one operation.
import { type Command, json, optional, UsageError, type Values } from './cli-command.js'
import type { Output } from './cli-output.js'
import type { BulkAction, BulkResult, BulkTarget } from './token-bulk.js'
import { FILTER_OPTIONS, FILTER_USAGE, filterInput } from './token-list-cli.js'
import { parseFilter } from './token-query.js'
import type { TokenAdmin } from './tokens.js'

const PAST: Record<BulkAction, string> = {
  revoke: 'revoked',
  disable: 'disabled',
  enable: 'enabled',
  delete: 'deleted',
}

const ABOUT: Record<BulkAction, string> = {
  revoke: `Revoke tokens. Permanent: a revoked token cannot be enabled again. Every running tokengate
refuses them on its next request (one invalidation per token, published in batches).`,
  disable: 'Refuse tokens until `tokengate token enable`.',
  enable: 'Enable disabled tokens (revoked ones stay revoked).',
  delete: `Remove revoked or expired tokens from Redis and from every listing now, instead of waiting
tokens.expiredGrace. A live token is refused: revoke it first. The audit keeps their history.`,
}

/** The ids or filter a bulk command line names. */
export function bulkTarget(v: Values, ids: string[]): BulkTarget {
  return v.filter ? { filter: filterInput(v) } : { ids }
}

function precheck(action: BulkAction, v: Values, ids: string[]): void {
  const userOnly = action === 'revoke' && !v.filter && optional(v, 'user') !== undefined
  if (v.filter && ids.length) throw new UsageError('give token ids or --filter, not both')
  if (!v.filter && !userOnly && ids.length === 0)
    throw new UsageError(
      `give the token IDs to ${action}${action === 'revoke' ? ', --user ID' : ''}, or --filter with conditions`,
    )
  if (userOnly && ids.length) throw new UsageError('give token ids or --user ID, not both')
  const stray = Object.keys(FILTER_OPTIONS).filter(
    (k) => v[k] !== undefined && !v.filter && !(userOnly && k === 'user'),
  )
  if (stray.length) throw new UsageError(`--${stray[0]} selects tokens only with --filter`)
  if (v['dry-run'] && !v.filter && ids.length <= 1 && !userOnly)
    throw new UsageError('--dry-run goes with --filter or several ids')
  if (v.filter) parseFilter(filterInput(v), Date.now())
}

function print(out: Output, r: BulkResult, asJson: boolean): void {
  if (asJson) {
    out.json(r)
    return
  }
  const s = r.matched === 1 ? '' : 's'
  if (r.dryRun) {
    out.line(`would ${r.action} ${r.matched} token${s}${r.matched ? ':' : ''}`)
    for (const id of r.sample) out.line(`  ${id}`)
    if (r.matched > r.sample.length) out.line(`  … and ${r.matched - r.sample.length} more`)
    return
  }
  const unchanged = r.matched - r.changed
  out.line(
    `${PAST[r.action]} ${r.changed} token${r.changed === 1 ? '' : 's'}${unchanged ? ` (${unchanged} already ${PAST[r.action]})` : ''}`,
  )
  for (const id of r.notFound) out.line(`no token with id "${id}"`)
}

/** The command for one bulk action; `single` handles one id (and `revoke --user`). */
export function bulkCommand(
  action: BulkAction,
  single: ((admin: TokenAdmin, v: Values, id: string | undefined, out: Output) => Promise<void>) | undefined,
): Command {
  const userLine = action === 'revoke' ? `\n       tokengate token revoke --user ID [--json]` : ''
  return {
    usage: `usage: tokengate token ${action} ID… [--json]${userLine}
       tokengate token ${action} --filter [filters] [--dry-run] [--json]

${ABOUT[action]}
${action === 'revoke' ? '\n  --user ID     without --filter: every token of the user (and its refresh tokens)' : ''}
  --filter      act on every token the filters select (at least one filter)
  --dry-run     print how many tokens would change and the first 20 ids; change nothing
  --json        print { action, matched, changed, dryRun, sample, notFound }

${FILTER_USAGE}`,
    example: `tokengate token ${action} --filter --status ${action === 'enable' ? 'disabled' : 'active'} --album TEACHING --dry-run`,
    options: { ...FILTER_OPTIONS, filter: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, json },
    positionals: [0, Number.POSITIVE_INFINITY],
    precheck: (v, ids) => precheck(action, v, ids),
    run: async (admin, v, ids, out) => {
      if (single && !v.filter && ids.length <= 1) return single(admin, v, ids[0], out)
      const result = await admin.bulk.apply(action, bulkTarget(v, ids), Boolean(v['dry-run']))
      print(out, result, Boolean(v.json))
    },
  }
}
