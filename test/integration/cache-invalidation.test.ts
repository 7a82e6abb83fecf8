// The hot path against real Redis: misses of one token share one Redis call, unknown tokens are
// remembered so garbage cannot flood Redis, revoke / disable / enable reach every running gate at
// once although their caches hold the token for minutes, and an outage leaves cached tokens
// working, uncached ones refused with 503, and the cache cleared when the channel comes back.
import t from 'tap'
import { admin, type GateHandle, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { commandCalls, startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { probeUntil, waitFor } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const tokens = admin(redis.client)
const longCache = { cache: { ttl: '10m', negativeTtl: '10m' } }

async function gate(config: Record<string, unknown> = longCache): Promise<GateHandle> {
  return startGate({ redisUrl: redis.url, upstream: `${upstream.url}/dicom-web`, config })
}

const calls = (command: string) => commandCalls(redis.client, command)

const status = async (g: GateHandle, token: string) =>
  (await send(g.url, { path: '/api/studies', headers: bearer(token) })).status

/** Requests until `want` (an invalidation is a message on another socket: allow it a moment). */
function eventually(g: GateHandle, token: string, want: number): Promise<number> {
  return probeUntil(
    () => status(g, token),
    (got) => got === want,
    { intervalMs: 10 },
  )
}

t.test('concurrent misses for one token share a single Redis lookup', async (t) => {
  const g = await gate()
  t.teardown(g.stop)
  const { token } = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  await redis.client.config('RESETSTAT')
  const answers = await Promise.all(Array.from({ length: 20 }, () => status(g, token)))
  t.same(new Set(answers), new Set([200]))
  t.equal(await calls('hmget'), 1, 'one lookup for 20 concurrent requests')
})

t.test('an unknown token costs one Redis lookup per negative TTL, however often it is sent', async (t) => {
  const g = await gate()
  t.teardown(g.stop)
  await redis.client.config('RESETSTAT')
  for (let i = 0; i < 30; i++) t.equal(await status(g, 'legacy-never-issued-token'), 401)
  await Promise.all(Array.from({ length: 10 }, (_, i) => status(g, `legacy-other-garbage-${i}`)))
  t.equal(await calls('hmget'), 11, 'one lookup per distinct unknown token')
  t.equal(g.app.cache.stats.negativeHits, 29)
})

t.test('revoke, disable and enable reach two running gates at once despite a 10-minute cache', async (t) => {
  const one = await gate()
  t.teardown(one.stop)
  const two = await gate()
  t.teardown(two.stop)
  const a = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  const b = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  for (const g of [one, two]) {
    t.equal(await status(g, a.token), 200)
    t.equal(await status(g, b.token), 200)
  }
  await tokens.revoke(a.id)
  await tokens.disable(b.id)
  for (const g of [one, two]) {
    t.equal(await eventually(g, a.token, 401), 401, 'revoked: refused')
    t.equal(await eventually(g, b.token, 401), 401, 'disabled: refused')
  }
  await tokens.enable(b.id)
  for (const g of [one, two]) t.equal(await eventually(g, b.token, 200), 200, 'enabled again: allowed')
  const reasons = one.logs
    .map((l) => JSON.parse(l))
    .filter((l) => l.status === 401)
    .map((l) => l.reason)
  t.same([...new Set(reasons)].sort(), ['disabled', 'revoked'])
})

t.test("revoking a user's tokens reaches a running gate", async (t) => {
  const g = await gate()
  t.teardown(g.stop)
  const u1 = await tokens.create({ kind: 'user', user: 'mallory', expiresIn: '1h' })
  const u2 = await tokens.create({
    kind: 'album',
    album: 'A',
    user: 'mallory',
    perms: 'read',
    expiresIn: '1h',
  })
  t.equal(await status(g, u1.token), 200)
  t.equal(await status(g, u2.token), 200)
  t.equal(await tokens.revokeUser('mallory'), 2)
  t.equal(await eventually(g, u1.token, 401), 401)
  t.equal(await eventually(g, u2.token, 401), 401)
})

t.test('with the cache disabled every request asks Redis', async (t) => {
  const g = await gate({ cache: { max: 0 } })
  t.teardown(g.stop)
  const { token } = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  await redis.client.config('RESETSTAT')
  for (let i = 0; i < 5; i++) t.equal(await status(g, token), 200)
  t.equal(await calls('hmget'), 5, 'five lookups')
})

t.test('Redis down: cached tokens pass, uncached get 503; back up: the cache is cleared', async (t) => {
  const g = await gate()
  t.teardown(g.stop)
  const cachedToken = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  const uncached = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  t.equal(await status(g, cachedToken.token), 200)
  await redis.kill()
  t.equal(await status(g, cachedToken.token), 200, 'cached: still served while fresh')
  const refused = await send(g.url, { path: '/api/studies', headers: bearer(uncached.token) })
  t.equal(refused.status, 503, 'uncached: fail closed')
  t.equal((refused.json() as { error: string }).error, 'service_unavailable')
  t.equal(refused.headers['retry-after'], '1')
  await redis.restart()
  // The restarted Redis is empty, as if the token had been deleted while we were cut off: once the
  // invalidation channel is back the cache is cleared, so the token is looked up again and refused.
  t.equal(await eventually(g, cachedToken.token, 401), 401, 'refused after the reconnect')
  t.ok(
    g.logs.some((l) => l.includes('invalidation channel reconnected')),
    'the reconnect is logged',
  )
})

t.test(
  'cache.staleIfError: past its TTL a cached token is served while Redis is down, never past expiresAt',
  async (t) => {
    let clock = Date.now()
    // One monotonic clock for both caches' TTLs, moved by the test instead of waiting.
    let cacheClock = 1_000
    const withStale = await startGate({
      redisUrl: redis.url,
      upstream: `${upstream.url}/dicom-web`,
      config: { cache: { ttl: '100ms', staleIfError: '5m' } },
      now: () => clock,
      cacheClock: () => cacheClock,
    })
    t.teardown(withStale.stop)
    const without = await startGate({
      redisUrl: redis.url,
      upstream: `${upstream.url}/dicom-web`,
      config: { cache: { ttl: '100ms' } },
      cacheClock: () => cacheClock,
    })
    t.teardown(without.stop)
    const long = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    const short = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '10m' })
    for (const g of [withStale, without]) t.equal(await status(g, long.token), 200)
    t.equal(await status(withStale, short.token), 200)
    await redis.kill()
    t.teardown(() => redis.restart())
    cacheClock += 101 // past the TTL
    t.equal(await status(withStale, long.token), 200, 'stale but served: Redis cannot be asked')
    t.equal(await status(without, long.token), 503, 'without staleIfError: past the TTL an outage is 503')
    clock += 11 * 60_000
    t.equal(await status(withStale, short.token), 401, 'never past its expiresAt')
    t.ok(withStale.app.cache.stats.outageHits >= 1, 'counted as an outage hit')
  },
)

t.test(
  'while the invalidation channel is down every lookup asks Redis, so a missed revoke still counts',
  async (t) => {
    const g = await gate()
    t.teardown(g.stop)
    const a = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    const b = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    for (const x of [a, b]) t.equal(await status(g, x.token), 200)
    // Revoked behind the channel's back (no message): the 10-minute cache would keep serving it.
    const { hashSecret } = await import('../../src/credential/secret.js')
    await redis.client.hset(`tg:token:${hashSecret(a.token)}`, 'revokedAt', String(Date.now()))
    t.equal(await status(g, a.token), 200, 'cached and the channel is up: served from the cache')
    g.app.cache.suspend()
    t.equal(await status(g, a.token), 401, 'channel down: Redis is asked, and says revoked')
    t.equal(await status(g, b.token), 200)
    g.app.cache.resume()
    // A real drop of the subscriber's connection: it reconnects, resubscribes and clears the cache.
    await redis.client.hset(`tg:token:${hashSecret(b.token)}`, 'revokedAt', String(Date.now()))
    const mark = g.logs.length
    await redis.client.client('KILL', 'TYPE', 'pubsub')
    await waitFor('the invalidation channel to reconnect', () =>
      g.logs.slice(mark).some((l) => l.includes('invalidation channel reconnected')),
    )
    t.equal(await status(g, b.token), 401, 'after the reconnect the cache was cleared')
  },
)
