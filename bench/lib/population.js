// Album tokens written straight into Redis, in one pipeline: the hash `token create` writes (via
// record.ts toHash), 500 users with a user record each, so every lookup also reads its user. For
// the benches that look tokens up and must not pay the admin API's cost to set up 10,000 of them
// (lookup.js, round-trip.js). Returns the secrets; their hashes (hashSecret) are the lookup keys.
import { hashSecret, mintSecret } from '../../dist/credential/secret.js'
import { toHash } from '../../dist/token/record.js'

/**
 * An album token's record: read-only, no user, enabled, never used; `over` sets the rest.
 * @param {Partial<import('../../dist/token/record.js').TokenRecord> & { id: string, album: string, createdAt: number, expiresAt: number }} over
 * @returns {import('../../dist/token/record.js').TokenRecord}
 */
function albumRecord(over) {
  return {
    kind: 'album',
    user: '',
    perms: new Set(['read']),
    enabled: true,
    revokedAt: 0,
    description: '',
    tenant: '',
    attrs: {},
    lastUsedAt: 0,
    userActive: true,
    userValidUntil: 0,
    createdBy: 'cli:root',
    ...over,
  }
}

/**
 * @param {import('ioredis').Redis} redis
 * @param {import('../../dist/token/keys.js').Keys} keys
 * @param {number} count
 * @returns {Promise<string[]>}
 */
export async function seedAlbumTokens(redis, keys, count) {
  const now = Date.now()
  /** @type {string[]} */
  const secrets = []
  const p = redis.pipeline()
  for (let n = 0; n < count; n++) {
    const secret = mintSecret('tg_')
    secrets.push(secret)
    const user = `user-${n % 500}`
    p.hset(
      keys.token(hashSecret(secret)),
      toHash(
        albumRecord({
          id: `tok_${String(n).padStart(12, '0')}`,
          user,
          album: `album-${n % 200}`,
          perms: new Set(['read', 'download']),
          expiresAt: now + 86_400_000,
          createdAt: now,
          description: 'viewer link for the tumour board',
          lastUsedAt: now,
        }),
      ),
    )
    if (n < 500) p.hset(keys.user(user), { status: 'active', validUntil: '0' })
  }
  await p.exec()
  return secrets
}

/**
 * `count` album tokens in the layout `token create` writes (record, id key, the index sets, the
 * sorted indexes by created and by expires), written in pipelines of 5,000, for the operator's
 * benches (admin-list.js). Token n is created at `t0 + n` seconds in album `album-<n % albums>`.
 * @param {import('ioredis').Redis} redis
 * @param {import('../../dist/token/keys.js').Keys} keys
 * @param {{ count: number, t0: number, albums: number }} shape
 */
export async function seedIndexedTokens(redis, keys, { count, t0, albums }) {
  const BATCH = 5000
  for (let i = 0; i < count; i += BATCH) {
    const p = redis.pipeline()
    for (let n = i; n < Math.min(count, i + BATCH); n++) {
      const hash = hashSecret(mintSecret('tg_'))
      const id = `tok_seed${String(n).padStart(8, '0')}`
      const album = `album-${n % albums}`
      const createdAt = t0 + n * 1000
      const expiresAt = t0 + 300 * 86_400_000
      p.hset(keys.token(hash), toHash(albumRecord({ id, album, createdAt, expiresAt })))
      p.pexpireat(keys.token(hash), expiresAt + 60_000)
      p.set(keys.id(id), hash).pexpireat(keys.id(id), expiresAt + 60_000)
      p.sadd(keys.allTokens(), id).sadd(keys.albumTokens(album), id)
      p.zadd(keys.tokensByCreated(), createdAt, id).zadd(keys.tokensByExpires(), expiresAt, id)
    }
    await p.exec()
  }
}
