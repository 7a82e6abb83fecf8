// Album tokens written straight into Redis, in one pipeline: the hash `token create` writes (via
// record.ts toHash), 500 users with a user record each, so every lookup also reads its user. For
// the benches that look tokens up and must not pay the admin API's cost to set up 10,000 of them
// (lookup.js, round-trip.js). Returns the secrets; their hashes (hashSecret) are the lookup keys.
import { hashSecret, mintSecret } from '../../dist/credential/secret.js'
import { toHash } from '../../dist/token/record.js'

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
      toHash({
        id: `tok_${String(n).padStart(12, '0')}`,
        kind: 'album',
        user,
        album: `album-${n % 200}`,
        perms: new Set(['read', 'download']),
        expiresAt: now + 86_400_000,
        createdAt: now,
        enabled: true,
        revokedAt: 0,
        description: 'viewer link for the tumour board',
        tenant: '',
        attrs: {},
        lastUsedAt: now,
        userActive: true,
        userValidUntil: 0,
        createdBy: 'cli:root',
      }),
    )
    if (n < 500) p.hset(keys.user(user), { status: 'active', validUntil: '0' })
  }
  await p.exec()
  return secrets
}
