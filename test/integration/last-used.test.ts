// `last used` is recorded in batches: however many requests a token makes, at most one Redis
// write per token per tokens.lastUsedInterval; `token show` and `token list` show it; the write
// never recreates a record that has left Redis, nor moves the time backwards.
import t from 'tap'
import { hashSecret } from '../../src/credential/secret.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const tokens = admin(redis.client)

async function evals(): Promise<number> {
  const m = /cmdstat_eval:calls=(\d+)/.exec(await redis.client.info('commandstats'))
  return m ? Number(m[1]) : 0
}

t.test(
  'many uses of two tokens in one interval cost one write each, then show in token show/list',
  async (t) => {
    const gate = await startGate({
      redisUrl: redis.url,
      upstream: `${upstream.url}/dicom-web`,
      config: { tokens: { lastUsedInterval: '300ms' } },
    })
    t.teardown(gate.stop)
    const a = await tokens.create({ kind: 'album', album: 'A', user: 'lu', perms: 'read', expiresIn: '1h' })
    const b = await tokens.create({ kind: 'album', album: 'A', user: 'lu', perms: 'read', expiresIn: '1h' })
    const unused = await tokens.create({
      kind: 'album',
      album: 'A',
      user: 'lu',
      perms: 'read',
      expiresIn: '1h',
    })
    await new Promise((r) => setTimeout(r, 350)) // start on a fresh interval
    await redis.client.config('RESETSTAT')
    const before = Date.now()
    for (let i = 0; i < 40; i++) {
      t.equal(
        (await send(gate.url, { path: '/api/studies', headers: bearer(i % 2 ? a.token : b.token) })).status,
        200,
      )
    }
    const elapsed = Date.now() - before
    await new Promise((r) => setTimeout(r, 400))
    // The requests may straddle flushes: at most one write per token per interval they spanned.
    const intervals = Math.ceil(elapsed / 300) + 1
    const writes = await evals()
    t.ok(writes >= 2 && writes <= 2 * intervals, `${writes} writes for 40 uses over ${intervals} interval(s)`)
    const shown = await tokens.show(a.id)
    t.ok(shown?.lastUsedAt, 'recorded')
    t.ok(Date.parse(shown?.lastUsedAt ?? '') >= before - 5, 'and recent')
    const listed = await tokens.list({ user: 'lu' })
    t.equal(listed.find((x) => x.id === unused.id)?.lastUsedAt, null, 'never used: null')
    t.ok(listed.find((x) => x.id === b.id)?.lastUsedAt)
  },
)

t.test(
  'a record that left Redis is not recreated, and an older time never overwrites a newer one',
  async (t) => {
    const gate = await startGate({
      redisUrl: redis.url,
      upstream: `${upstream.url}/dicom-web`,
      config: { tokens: { lastUsedInterval: '100ms' }, cache: { ttl: '10m' } },
    })
    t.teardown(gate.stop)
    const gone = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(gone.token) })).status, 200)
    await new Promise((r) => setTimeout(r, 250))
    await redis.client.del(`tg:token:${hashSecret(gone.token)}`)
    // Still cached for 10 minutes (no invalidation was sent): the use is noted again.
    t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(gone.token) })).status, 200)
    await new Promise((r) => setTimeout(r, 250))
    t.equal(await redis.client.exists(`tg:token:${hashSecret(gone.token)}`), 0, 'not recreated')

    const kept = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    const future = Date.now() + 3_600_000
    await redis.client.hset(`tg:token:${hashSecret(kept.token)}`, 'lastUsedAt', String(future))
    t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(kept.token) })).status, 200)
    await new Promise((r) => setTimeout(r, 250))
    t.equal(await redis.client.hget(`tg:token:${hashSecret(kept.token)}`, 'lastUsedAt'), String(future))
  },
)
