// `last used` is recorded in batches: however many requests a token makes, it is written once per
// flush (every tokens.lastUsedInterval), 200 tokens to a script call, one call after the other (a
// failed one keeps its notes and the rest for the next flush); `token show` and `token list` show it; the write
// never recreates a record that has left Redis, nor moves the time backwards. The flushes are
// driven by the test (app.lastUsed.flush(), with an interval that never fires during it) and the
// time of use comes from an injected clock, so counts and times are exact.
import t, { type Test } from 'tap'
import { hashSecret } from '../../src/credential/secret.js'
import { makeKeys } from '../../src/token/keys.js'
import { recordLastUsed } from '../../src/token/last-used.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { scriptCalls, startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const tokens = admin(redis.client)

const calls = () => scriptCalls(redis.client)

/** A gate whose flushes only the test triggers, and whose clock the test sets. */
async function manualGate(t: Test, clock: { now: number }, config: Record<string, unknown> = {}) {
  const gate = await startGate({
    redisUrl: redis.url,
    upstream: `${upstream.url}/dicom-web`,
    config: { tokens: { lastUsedInterval: '1h' }, ...config },
    now: () => clock.now,
  })
  t.teardown(gate.stop)
  return gate
}

t.test(
  'many uses of two tokens between two flushes cost one write each, then show in token show/list',
  async (t) => {
    const clock = { now: Date.now() }
    const gate = await manualGate(t, clock)
    const a = await tokens.create({ kind: 'album', album: 'A', user: 'lu', perms: 'read', expiresIn: '1h' })
    const b = await tokens.create({ kind: 'album', album: 'A', user: 'lu', perms: 'read', expiresIn: '1h' })
    const unused = await tokens.create({
      kind: 'album',
      album: 'A',
      user: 'lu',
      perms: 'read',
      expiresIn: '1h',
    })
    await redis.client.config('RESETSTAT')
    for (let i = 0; i < 40; i++) {
      clock.now += 1000
      const status = (
        await send(gate.url, { path: '/api/studies', headers: bearer(i % 2 ? a.token : b.token) })
      ).status
      t.equal(status, 200)
    }
    t.equal(
      await redis.client.hget(`tg:token:${hashSecret(a.token)}`, 'lastUsedAt'),
      '0',
      'nothing written before the flush (a new record says 0: never)',
    )
    // The lookups were script calls too: count from here.
    await redis.client.config('RESETSTAT')
    await gate.app.lastUsed.flush()
    t.equal(await calls(), 1, 'one write for both tokens, for 40 uses')
    t.equal((await tokens.show(a.id))?.lastUsedAt, new Date(clock.now).toISOString(), 'the latest use of a')
    const listed = await tokens.list({ user: 'lu' })
    t.equal(listed.find((x) => x.id === unused.id)?.lastUsedAt, null, 'never used: null')
    t.equal(listed.find((x) => x.id === b.id)?.lastUsedAt, new Date(clock.now - 1000).toISOString())
    await gate.app.lastUsed.flush()
    t.equal(await calls(), 1, 'nothing new noted: a flush writes nothing')
  },
)

t.test('the interval timer flushes on its own', async (t) => {
  const gate = await startGate({
    redisUrl: redis.url,
    upstream: `${upstream.url}/dicom-web`,
    config: { tokens: { lastUsedInterval: '100ms' } },
  })
  t.teardown(gate.stop)
  const tok = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(tok.token) })).status, 200)
  const shown = await waitFor('the use to be written', async () => (await tokens.show(tok.id))?.lastUsedAt)
  t.type(shown, 'string')
})

t.test(
  'a record that left Redis is not recreated, and an older time never overwrites a newer one',
  async (t) => {
    const clock = { now: Date.now() }
    const gate = await manualGate(t, clock, { cache: { ttl: '10m' } })
    const gone = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(gone.token) })).status, 200)
    await gate.app.lastUsed.flush()
    t.ok(
      await redis.client.hget(`tg:token:${hashSecret(gone.token)}`, 'lastUsedAt'),
      'written while it existed',
    )
    await redis.client.del(`tg:token:${hashSecret(gone.token)}`)
    // Still cached for 10 minutes (no invalidation was sent): the use is noted again.
    clock.now += 1000
    t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(gone.token) })).status, 200)
    await gate.app.lastUsed.flush()
    t.equal(await redis.client.exists(`tg:token:${hashSecret(gone.token)}`), 0, 'not recreated')

    const kept = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    const future = clock.now + 60_000 // later than any use below, before the expiry
    await redis.client.hset(`tg:token:${hashSecret(kept.token)}`, 'lastUsedAt', String(future))
    t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(kept.token) })).status, 200)
    await gate.app.lastUsed.flush()
    t.equal(await redis.client.hget(`tg:token:${hashSecret(kept.token)}`, 'lastUsedAt'), String(future))
    clock.now = future + 1
    t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(kept.token) })).status, 200)
    await gate.app.lastUsed.flush()
    t.equal(
      await redis.client.hget(`tg:token:${hashSecret(kept.token)}`, 'lastUsedAt'),
      String(future + 1),
      'a newer time does replace it (the check above could not pass by never writing)',
    )
  },
)

t.test('a flush of 450 tokens is three script calls; each record gets its own time', async (t) => {
  const clock = { now: Date.now() }
  const gate = await manualGate(t, clock)
  const made = []
  for (let i = 0; i < 450; i++)
    made.push(await tokens.create({ kind: 'album', album: 'B', perms: 'read', expiresIn: '1h' }))
  const gone = made[7] as (typeof made)[number]
  const ahead = made[300] as (typeof made)[number]
  for (const [i, m] of made.entries()) {
    clock.now += 10
    t.equal(
      (await send(gate.url, { path: '/api/studies', headers: bearer(m.token) })).status,
      200,
      `token ${i}`,
    )
  }
  const last = clock.now
  // One record leaves Redis, one already holds a later time (another replica wrote it).
  await redis.client.del(`tg:token:${hashSecret(gone.token)}`)
  await redis.client.hset(`tg:token:${hashSecret(ahead.token)}`, 'lastUsedAt', String(last + 60_000))
  await redis.client.config('RESETSTAT')
  await gate.app.lastUsed.flush()
  t.equal(await calls(), 3, '450 tokens: 3 calls of at most 200')
  t.equal(
    await redis.client.exists(`tg:token:${hashSecret(gone.token)}`),
    0,
    'a gone record is not recreated',
  )
  t.equal(
    await redis.client.hget(`tg:token:${hashSecret(ahead.token)}`, 'lastUsedAt'),
    String(last + 60_000),
    'a later time is kept',
  )
  const first = made[0] as (typeof made)[number]
  const final = made[449] as (typeof made)[number]
  t.equal((await tokens.show(first.id))?.lastUsedAt, new Date(last - 449 * 10).toISOString())
  t.equal((await tokens.show(final.id))?.lastUsedAt, new Date(last).toISOString())
})

t.test('a flush after Redis forgot its scripts (SCRIPT FLUSH) still writes', async (t) => {
  const clock = { now: Date.now() }
  const gate = await manualGate(t, clock)
  const made = await tokens.create({ kind: 'album', album: 'S', perms: 'read', expiresIn: '1h' })
  const key = `tg:token:${hashSecret(made.token)}`
  clock.now += 1000
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(made.token) })).status, 200)
  await gate.app.lastUsed.flush()
  t.equal(await redis.client.hget(key, 'lastUsedAt'), String(clock.now), 'written once')
  await redis.client.script('FLUSH')
  clock.now += 1000
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(made.token) })).status, 200)
  await gate.app.lastUsed.flush()
  t.equal(await redis.client.hget(key, 'lastUsedAt'), String(clock.now), 'and again after the flush')
})

t.test('a step that fails keeps its notes and the later steps for the next flush', async (t) => {
  const made: Awaited<ReturnType<typeof tokens.create>>[] = []
  for (let i = 0; i < 250; i++)
    made.push(await tokens.create({ kind: 'album', album: 'F', perms: 'read', expiresIn: '1h' }))
  const errors: unknown[] = []
  const recorder = recordLastUsed(redis.client, makeKeys('tg:'), {
    intervalMs: 3_600_000,
    onError: (err) => errors.push(err),
  })
  t.teardown(() => recorder.close())
  const keyOf = (m: (typeof made)[number]) => `tg:token:${hashSecret(m.token)}`
  // The first token of the second step is no longer a hash: the script's HGET fails there.
  const broken = made[200] as (typeof made)[number]
  await redis.client.del(keyOf(broken))
  await redis.client.set(keyOf(broken), 'not a hash')
  const at = Date.now()
  for (const [i, m] of made.entries()) recorder.seen(hashSecret(m.token), at + i)
  await recorder.flush()
  t.equal(errors.length, 1, 'the failure was reported once')
  t.equal(await redis.client.hget(keyOf(made[199] as (typeof made)[number]), 'lastUsedAt'), String(at + 199))
  t.equal(
    await redis.client.hget(keyOf(made[249] as (typeof made)[number]), 'lastUsedAt'),
    '0',
    'the second step was not written',
  )
  await redis.client.del(keyOf(broken))
  await recorder.flush()
  t.equal(errors.length, 1, 'the next flush went through')
  for (const i of [0, 201, 249])
    t.equal(
      await redis.client.hget(keyOf(made[i] as (typeof made)[number]), 'lastUsedAt'),
      String(at + i),
      `token ${i} written`,
    )
  t.equal(await redis.client.exists(keyOf(broken)), 0, 'the gone record is not recreated')
})
