// Token administration, bulk changes (`token revoke|disable|enable ID…` or `--filter …`, `token
// delete ID…`, the admin API's `POST /tokens/revoke|disable|enable|delete`): select tokens by ids
// or by a list filter (admin/token-query.ts), change them in pipelined batches, publish one
// invalidation per changed token (pipelined, so a running proxy drops them from its cache), and
// write ONE audit entry with the count. `dryRun` only counts. Each write is a single-key script, as
// in admin/tokens.ts, so it works on Redis Cluster.

import { publishInvalidation } from '../token/invalidation.js'
import type { EvictKey, Keys } from '../token/keys.js'
import type { RedisClient } from '../token/redis-client.js'
import type { AuditFacts } from './audit.js'
import { checkTokenId } from './id-input.js'
import { AdminInputError } from './input-error.js'
import { REVOKE_IF_LIVE } from './redis-ops.js'
import type { Found, TokenListing } from './token-listing.js'
import { decodeCursor, isEmptyFilter, MAX_PAGE, parseFilter, type TokenFilterInput } from './token-query.js'
import { statusOf } from './token-view.js'

/** Ids, or a filter: what a bulk command acts on. */
export type BulkTarget = { ids: string[] } | { filter: TokenFilterInput }

export type BulkAction = 'revoke' | 'disable' | 'enable' | 'delete'

export interface BulkResult {
  action: BulkAction
  /** How many tokens the selection holds. */
  matched: number
  /** How many were changed now (0 for a dry run). */
  changed: number
  dryRun: boolean
  /** The first ids selected (at most 20), to check a dry run against. */
  sample: string[]
  /** Ids given that name no token (ids only). */
  notFound: string[]
}

/** Pipelined batch size of the writes and publications. */
const BATCH = 500
const SAMPLE = 20
const MAX_IDS = 10_000
const CREATED = { sort: 'created', desc: false } as const

// Set `enabled` on a record that exists, differs, and (to enable) is not revoked.
const SET_ENABLED = `local e = redis.call('HGET', KEYS[1], 'enabled')
if e == false or e == ARGV[1] then return 0 end
if ARGV[1] == '1' then
  local r = redis.call('HGET', KEYS[1], 'revokedAt')
  if tonumber(r) and tonumber(r) > 0 then return 0 end
end
redis.call('HSET', KEYS[1], 'enabled', ARGV[1])
return 1`

export interface BulkDeps {
  redis: RedisClient
  keys: Keys
  listing: TokenListing
  load: (ids: string[]) => Promise<(Found | null)[]>
  now: () => number
  record: (facts: AuditFacts) => Promise<void>
}

export class BulkOps {
  constructor(private readonly d: BulkDeps) {}

  /** Revoke, disable, enable or delete the selected tokens (or, with dryRun, count them). */
  async apply(action: BulkAction, target: BulkTarget, dryRun = false): Promise<BulkResult> {
    const now = this.d.now()
    const { found, notFound, filterText } = await this.select(target, now)
    const result: BulkResult = {
      action,
      matched: found.length,
      changed: 0,
      dryRun,
      sample: found.slice(0, SAMPLE).map((f) => f.record.id),
      notFound,
    }
    if (dryRun) return result
    if (action === 'delete') {
      const live = found.filter((f) => !['revoked', 'expired'].includes(statusOf(f.record, now)))
      if (live.length)
        throw new AdminInputError(
          `token delete removes revoked or expired tokens only; revoke first: ${live
            .slice(0, 5)
            .map((f) => f.record.id)
            .join(', ')}${live.length > 5 ? ` and ${live.length - 5} more` : ''}`,
          'ids',
        )
    }
    for (let i = 0; i < found.length; i += BATCH) {
      const batch = found.slice(i, i + BATCH)
      const changed = await Promise.all(batch.map((f) => this.write(action, f, now)))
      const hashes = batch.filter((_, j) => changed[j]).map((f) => f.hash)
      result.changed += hashes.length
      await Promise.all(hashes.map((hash) => this.publish({ kind: 'token', hash })))
    }
    await this.d.record({
      op: `token.bulk-${action}`,
      count: result.changed,
      ...(filterText ? { filter: filterText } : { ids: result.sample }),
    })
    return result
  }

  private async write(action: BulkAction, f: Found, now: number): Promise<boolean> {
    const { redis, keys } = this.d
    const key = keys.token(f.hash)
    if (action === 'revoke') return (await redis.eval(REVOKE_IF_LIVE, 1, key, String(now))) !== 0
    if (action !== 'delete')
      return (await redis.eval(SET_ENABLED, 1, key, action === 'enable' ? '1' : '0')) !== 0
    // What points at the record first, then the id key, then the record: the reverse of create.
    const r = f.record
    await Promise.all([
      redis.srem(keys.allTokens(), r.id),
      redis.zrem(keys.tokensByCreated(), r.id),
      redis.zrem(keys.tokensByExpires(), r.id),
      ...(r.user ? [redis.srem(keys.userTokens(r.user), r.id)] : []),
      ...(r.album ? [redis.srem(keys.albumTokens(r.album), r.id)] : []),
    ])
    await redis.del(keys.id(r.id))
    return (await redis.del(key)) !== 0
  }

  /** The tokens selected: by ids (each checked), or every page of a non-empty filter. */
  private async select(
    target: BulkTarget,
    now: number,
  ): Promise<{ found: Found[]; notFound: string[]; filterText?: string }> {
    if ('ids' in target) {
      if (!Array.isArray(target.ids) || target.ids.length === 0)
        throw new AdminInputError('ids must list at least one token id', 'ids')
      if (target.ids.length > MAX_IDS)
        throw new AdminInputError(`ids lists more than ${MAX_IDS} tokens; select them with a filter`, 'ids')
      const ids = [...new Set(target.ids.map((id) => checkTokenId(id, 'a token id', 'ids')))]
      const found: Found[] = []
      const notFound: string[] = []
      for (let i = 0; i < ids.length; i += BATCH) {
        const batch = ids.slice(i, i + BATCH)
        const loaded = await this.d.load(batch)
        loaded.forEach((f, j) => {
          if (f) found.push(f)
          else notFound.push(batch[j] as string)
        })
      }
      return { found, notFound }
    }
    const filter = parseFilter(target.filter, now)
    if (isEmptyFilter(filter))
      throw new AdminInputError(
        'filter must name at least one condition (it would select every token)',
        'filter',
      )
    const found: Found[] = []
    let cursor: string | undefined
    do {
      const page = await this.d.listing.pageRecords(
        {
          filter,
          sort: 'created',
          desc: false,
          limit: MAX_PAGE,
          ...(cursor ? { cursor: decodeCursor(cursor, CREATED) } : {}),
        },
        now,
      )
      found.push(...page.items)
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    return { found, notFound: [], filterText: describeFilter(target.filter) }
  }

  private async publish(key: EvictKey): Promise<void> {
    await publishInvalidation(this.d.redis, this.d.keys, key)
  }
}

/** The filter as the audit entry shows it: `status=active user=alice`. */
function describeFilter(input: TokenFilterInput): string {
  return Object.entries(input)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : v}`)
    .join(' ')
}
