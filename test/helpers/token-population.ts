// A large token population for the operator tests (paging, bulk revocation among 100,000): the
// same Redis layout TokenAdmin.create writes (record, id key, index sets, sorted indexes by created
// and by expires; keys.ts spells them), written in pipelines of thousands instead of one create
// at a time, so 100,000 tokens take seconds. Secrets are minted as create mints them.
import { hashSecret, mintSecret } from '../../src/credential/secret.js'
import type { Keys } from '../../src/token/keys.js'
import { type TokenRecord, toHash } from '../../src/token/record.js'
import type { RedisClient } from '../../src/token/redis-client.js'
import { tokenRecord } from './records.js'

/**
 * Store `count` tokens, record `n` built by `make(n)` over a valid album token. Returns the id and
 * secret of every n `keep` accepts (the others are not kept in memory).
 */
export async function seedTokens(
  redis: RedisClient,
  keys: Keys,
  count: number,
  make: (n: number) => Partial<TokenRecord>,
  keep: (n: number) => boolean = () => false,
): Promise<Map<number, { id: string; token: string }>> {
  const kept = new Map<number, { id: string; token: string }>()
  const BATCH = 5000
  for (let i = 0; i < count; i += BATCH) {
    const p = redis.pipeline()
    for (let n = i; n < Math.min(count, i + BATCH); n++) {
      const token = mintSecret('tg_')
      const hash = hashSecret(token)
      const r = tokenRecord({ id: `tok_seed${String(n).padStart(8, '0')}`, ...make(n) })
      const expireAt = r.expiresAt + 60_000
      p.hset(keys.token(hash), toHash(r)).pexpireat(keys.token(hash), expireAt)
      p.set(keys.id(r.id), hash).pexpireat(keys.id(r.id), expireAt)
      p.sadd(keys.allTokens(), r.id)
      if (r.user) p.sadd(keys.userTokens(r.user), r.id)
      if (r.kind === 'album') p.sadd(keys.albumTokens(r.album), r.id)
      p.zadd(keys.tokensByCreated(), r.createdAt, r.id)
      p.zadd(keys.tokensByExpires(), r.expiresAt, r.id)
      if (keep(n)) kept.set(n, { id: r.id, token })
    }
    await p.exec()
  }
  return kept
}
