// Refresh tokens on a real local Redis Cluster (three masters): the family's scripts touch only
// keys of one hash tag, and everything else is single-key, so create, rotation, concurrent double
// use, reuse and revocation by id work without CROSSSLOT errors.
import t from 'tap'
import type { TokenInfo } from '../../src/admin/tokens.js'
import { OAuthInvalidGrant } from '../../src/errors.js'
import { admin } from '../helpers/gate.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'

const cluster = await startRedisCluster()
t.teardown(cluster.stop)
const tokens = admin(cluster.client)
const WINDOW = 86_400_000

async function status(id: string): Promise<string | undefined> {
  return ((await tokens.show(id)) as TokenInfo | null)?.status
}

t.test('rotation, then reuse revokes the family, on a cluster', async (t) => {
  const created = await tokens.refresh.create({ kind: 'user', user: 'cl-alice' }, { clientId: 'c1' })
  const first = await tokens.refresh.refresh(created.refreshToken, 'c1', WINDOW)
  const second = await tokens.refresh.refresh(first.refreshToken, 'c1', WINDOW)
  t.equal(await status(second.tokenId), 'active')
  await t.rejects(tokens.refresh.refresh(created.refreshToken, 'c1', WINDOW), OAuthInvalidGrant)
  for (const id of [created.id, first.tokenId, second.tokenId]) t.equal(await status(id), 'revoked', id)
  const late = await tokens.refresh.refresh(second.refreshToken, 'c1', WINDOW).catch((e: unknown) => e)
  t.equal((late as OAuthInvalidGrant).reason, 'grant_revoked')
})

t.test('two simultaneous uses on a cluster: exactly one wins', async (t) => {
  const created = await tokens.refresh.create({ kind: 'user', user: 'cl-bob' }, { clientId: 'c1' })
  const results = await Promise.allSettled([
    tokens.refresh.refresh(created.refreshToken, 'c1', WINDOW),
    tokens.refresh.refresh(created.refreshToken, 'c1', WINDOW),
  ])
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
  t.equal((lost.reason as OAuthInvalidGrant).reason, 'grant_reused')
})

t.test('revoking by refresh id on a cluster revokes its access tokens', async (t) => {
  const created = await tokens.refresh.create(
    { kind: 'user', user: 'cl-carol' },
    { clientId: 'c1', offline: true },
  )
  const next = await tokens.refresh.refresh(created.refreshToken, 'c1', WINDOW)
  const info = await tokens.revoke(created.refreshTokenId)
  t.match(info, { kind: 'refresh', status: 'revoked', revokedTokens: 2, expiresAt: null })
  t.equal(await status(next.tokenId), 'revoked')
})
