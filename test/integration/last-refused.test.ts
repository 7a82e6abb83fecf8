// A revoked, disabled or expired token still being tried is what an operator hunts for (issue
// 14.4): its record keeps `lastRefusedAt` and the reason, written in batches like last use (one
// write per token per flush), shown by `token show`; the access-log line of the refused request
// carries the token id (the secret matched a record), never the secret. Flushes are driven by the
// test and the clock is injected.
import t from 'tap'
import { hashSecret } from '../../src/credential/secret.js'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { scriptCalls, startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const tokens = admin(redis.client)
const clock = { now: Date.now() }
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  // No failed-auth limiter: its counts are scripts too, flushed on its own timer, and could land
  // among the writes this test counts.
  config: { tokens: { lastUsedInterval: '1h' }, authLimiter: { enabled: false } },
  now: () => clock.now,
})
t.teardown(gate.stop)

const calls = () => scriptCalls(redis.client)
const get = async (token: string) =>
  (await send(gate.url, { path: '/api/studies', headers: bearer(token) })).status

t.test('refusals of a revoked and a disabled token are recorded batched, with the reason', async (t) => {
  const revoked = await tokens.create({ kind: 'album', album: 'R', perms: 'read', expiresIn: '1h' })
  const disabled = await tokens.create({ kind: 'album', album: 'R', perms: 'read', expiresIn: '1h' })
  const fine = await tokens.create({ kind: 'album', album: 'R', perms: 'read', expiresIn: '1h' })
  await tokens.revoke(revoked.id)
  await tokens.disable(disabled.id)
  await redis.client.config('RESETSTAT')
  for (let i = 0; i < 10; i++) {
    clock.now += 1000
    t.equal(await get(revoked.token), 401)
    t.equal(await get(disabled.token), 401)
  }
  t.equal(await get(fine.token), 200)
  t.equal(await get('tg_neverIssuedAnywhere0123456789abcdefgh'), 401)
  const key = `tg:token:${hashSecret(revoked.token)}`
  t.equal(await redis.client.hget(key, 'lastRefusedAt'), null, 'nothing written before the flush')
  const before = await calls()
  await gate.app.lastUsed.flush()
  t.equal((await calls()) - before, 3, 'one write per refused token, one for the use')
  const shown = await tokens.show(revoked.id)
  t.equal(shown?.lastRefusedAt, new Date(clock.now).toISOString())
  t.equal(shown?.lastRefusedReason, 'revoked')
  t.equal((await tokens.show(disabled.id))?.lastRefusedReason, 'disabled')
  t.equal((await tokens.show(fine.id))?.lastRefusedAt, null, 'never refused')

  const lines = accessLog(gate)
  const refused = lines.filter((l) => l.status === 401)
  t.equal(refused.filter((l) => l.tokenId === revoked.id).length, 10, 'the refused lines name the token')
  t.match(
    refused.at(-1),
    { tokenId: undefined, reason: /unknown|bad_checksum/ },
    'an unknown secret names none',
  )
  t.notMatch(gate.logs.join('\n'), revoked.token, 'never the secret')
})
