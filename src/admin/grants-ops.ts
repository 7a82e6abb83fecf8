// Token administration, permission profiles (issue 13, Thinger.io's "permissions can be changed
// later without issuing a new secret"): change a live token's grants, enabled flag or
// description in place (the grant arithmetic is admin/grant-input.ts's). The change is a compare-and-set on the one record key (so
// two administrators editing grants at once never lose an edit, and it works on Redis Cluster),
// then the token's invalidation is published: every replica drops its cached record and reads the
// new one on its next request, within the revocation delay. The CLI (`token update`) and the admin
// API (`PATCH /tokens/{id}`) call updateGrants; the secret never passes through here.
import { publishInvalidation } from '../token/invalidation.js'
import type { Keys } from '../token/keys.js'
import { fromHash, GRANTS_FIELD, type TokenHash, type TokenRecord, toHash } from '../token/record.js'
import type { RedisClient } from '../token/redis-client.js'
import { type Actor, type AuditOptions, AuditTrail, osUser } from './audit.js'
import { MAX_GRANTS, mergeGrants, parseGrantInput, subtractGrants } from './grant-input.js'
import { AdminInputError } from './input-error.js'
import { checkDescription, checkName, notFound, type TokenInfo, toInfo } from './tokens.js'

/** What `token update` / `PATCH /tokens/{id}` may change. Removals apply before additions. */
export interface GrantChange {
  /** Grants to add (`device:device42:GetDeviceStats`, `admin`); actions merge into an existing grant. */
  add?: string | readonly string[]
  /** Grants (or some of their actions) to remove; `type:id:*` removes the grant whole. */
  remove?: string | readonly string[]
  enabled?: boolean
  description?: string
}

export interface GrantOpsOptions {
  now?: () => number
  /** Who the audit trail records (default: the OS user). */
  actor?: Actor
  audit?: AuditOptions
}

// Write the fields only if the record is still there and its grants are still what was read.
// -1: gone; 0: grants changed meanwhile (read again); 1: written.
const HSET_IF_GRANTS = `if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1`

const ATTEMPTS = 10

/** Changes to live tokens over one Redis connection (the CLI's, or the admin API's). */
export class GrantOps {
  private readonly now: () => number
  private readonly actor: Actor
  private readonly audit: AuditTrail

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly opts: GrantOpsOptions,
  ) {
    this.now = opts.now ?? Date.now
    this.actor = opts.actor ?? { name: osUser() }
    this.audit = new AuditTrail(redis, keys, opts.audit)
  }

  /** The same operations, recorded as made by `actor` (the admin API: one per request). */
  withActor(actor: Actor): GrantOps {
    return new GrantOps(this.redis, this.keys, { ...this.opts, actor })
  }

  /**
   * Change a live token's grants (api tokens), enabled flag or description without a new secret;
   * every replica sees the change on its next request after the invalidation. Throws
   * AdminInputError (bad grant, grants on a non-api token, enabling a revoked token, nothing to
   * change) or AdminNotFound.
   */
  async updateGrants(id: string, change: GrantChange): Promise<TokenInfo> {
    checkName(id, 'the token id', 'id')
    const add = parseGrantInput(change.add, 'grant')
    const remove = parseGrantInput(change.remove, 'removeGrant')
    const description = change.description === undefined ? undefined : checkDescription(change.description)
    const editsGrants = add.length > 0 || remove.length > 0
    if (!editsGrants && change.enabled === undefined && description === undefined) {
      throw new AdminInputError(
        'nothing to change: give --grant, --remove-grant, --enable, --disable or --description',
        'grant',
      )
    }
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const found = await this.load(id)
      const { hash, record, storedGrants } = found
      if (editsGrants && record.kind !== 'api') {
        throw new AdminInputError(
          `token ${id} is a ${record.kind} token: only api tokens carry grants (create one with --kind api)`,
          'grant',
        )
      }
      if (change.enabled === true && record.revokedAt > 0) {
        throw new AdminInputError(
          `token ${id} was revoked at ${new Date(record.revokedAt).toISOString()}; revocation is permanent, create a new token instead`,
          'enabled',
        )
      }
      const next: TokenRecord = { ...record }
      // An unreadable grants field is replaced by what is added (nothing of it can be trusted).
      if (editsGrants) next.grants = mergeGrants(subtractGrants(record.grants ?? [], remove), add)
      if (next.grants && next.grants.length > MAX_GRANTS)
        throw new AdminInputError(`at most ${MAX_GRANTS} grants per token`, 'grant')
      if (change.enabled !== undefined) next.enabled = change.enabled
      if (description !== undefined) next.description = description
      const fields = changedFields(record, next, storedGrants)
      if (fields.length > 0) {
        const done = await this.redis.eval(
          HSET_IF_GRANTS,
          1,
          this.keys.token(hash),
          GRANTS_FIELD,
          storedGrants,
          ...fields,
        )
        if (done === -1) throw notFound(id)
        if (done === 0) {
          // Another update won the race: read again, after a jittered pause so contenders spread out.
          await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)))
          continue
        }
      }
      // Published even when nothing changed: harmless, and it repairs a replica that missed one.
      await publishInvalidation(this.redis, this.keys, { kind: 'token', hash })
      const info = toInfo(next, this.now())
      await this.audit.record(this.actor, {
        op: 'token.update',
        tokenId: record.id,
        user: record.user,
        changed: fields.length > 0,
        ...(editsGrants && info.grants ? { grants: info.grants.join(' ') } : {}),
        ...(change.enabled !== undefined ? { enabled: change.enabled } : {}),
      })
      return info
    }
    throw new AdminInputError(
      `token ${id} was changed by someone else ${ATTEMPTS} times while this update ran; try again`,
      'id',
    )
  }

  private async load(id: string): Promise<{ hash: TokenHash; record: TokenRecord; storedGrants: string }> {
    const hash = (await this.redis.get(this.keys.id(id))) as TokenHash | null
    const fields = hash ? await this.redis.hgetall(this.keys.token(hash)) : {}
    const record = fromHash(fields)
    // The id key must point at a record that carries the same id.
    if (!hash || !record || record.id !== id) throw notFound(id)
    return { hash, record, storedGrants: fields[GRANTS_FIELD] ?? '' }
  }
}

/** Field/value pairs (flat) of `next` that differ from `before`, grants compared as stored. */
function changedFields(before: TokenRecord, next: TokenRecord, storedGrants: string): string[] {
  const was = toHash(before)
  const out: string[] = []
  for (const [field, value] of Object.entries(toHash(next))) {
    if ((field === GRANTS_FIELD ? storedGrants : was[field]) !== value) out.push(field, value)
  }
  return out
}
