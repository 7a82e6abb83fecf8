// `token update` on real Redis (issue 13): grants, enabled flag and description of a live token
// change in place (same secret, same id), concurrent edits are never lost (compare-and-set on the
// record), every change publishes the token's invalidation and is audited, and input mistakes are
// refused with what to change.
import { Redis } from 'ioredis'
import t from 'tap'
import { GrantOps } from '../../src/admin/grants-ops.js'
import { AdminInputError, AdminNotFound } from '../../src/admin/input-error.js'
import { hashSecret } from '../../src/credential/secret.js'
import { makeKeys } from '../../src/token/keys.js'
import { fromHash, type TokenHash } from '../../src/token/record.js'
import { admin } from '../helpers/gate.js'
import { startRedis } from '../helpers/redis.js'
import { probeUntil } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const keys = makeKeys('tg:')
const tokens = admin(redis.client)
const ops = new GrantOps(redis.client, keys, { actor: { name: 'ops-test' } })

const stored = async (secret: string) =>
  fromHash(await redis.client.hgetall(keys.token(hashSecret(secret) as TokenHash)))

t.test('concurrent grant edits of one token all land', async (t) => {
  const tok = await tokens.create({ kind: 'api', grants: ['device:d0:Read'], expiresIn: '1h' })
  await Promise.all(
    Array.from({ length: 6 }, (_, i) => ops.updateGrants(tok.id, { add: [`device:d${i + 1}:Read`] })),
  )
  const grants = (await tokens.show(tok.id))?.grants ?? []
  t.same([...grants].sort(), [
    'device:d0:Read',
    'device:d1:Read',
    'device:d2:Read',
    'device:d3:Read',
    'device:d4:Read',
    'device:d5:Read',
    'device:d6:Read',
  ])
})

t.test('removals apply before additions: replace every device grant in one update', async (t) => {
  const tok = await tokens.create({ kind: 'api', grants: ['device:d1:A', 'device:d2:A,B'], expiresIn: '1h' })
  const info = await ops.updateGrants(tok.id, { remove: ['device:d1:*', 'device:d2:*'], add: 'device:d9:A' })
  t.same(info.grants, ['device:d9:A'])
  t.same((await stored(tok.token))?.grants?.length, 1, 'stored, read by the proxy the same way')
  const none = await ops.updateGrants(tok.id, { remove: ['device:d9:A'] })
  t.same(none.grants, [], 'every grant removed')
  t.same((await stored(tok.token))?.grants, [])
})

t.test('the secret and id stay; description and enabled change in place, audited', async (t) => {
  const tok = await tokens.create({ kind: 'api', grants: ['admin'], expiresIn: '1h' })
  const info = await ops.updateGrants(tok.id, { description: 'kiosk 3', enabled: false })
  t.match(info, { id: tok.id, description: 'kiosk 3', enabled: false, status: 'disabled' })
  t.match(await stored(tok.token), { id: tok.id, description: 'kiosk 3', enabled: false })
  const again = await ops.updateGrants(tok.id, { enabled: false })
  t.equal(again.enabled, false)
  const audit = (await tokens.audit.list()).filter((e) => e.tokenId === tok.id)
  t.match(audit.at(-2), { op: 'token.update', actor: 'ops-test', changed: true, enabled: 'false' })
  t.match(audit.at(-1), { op: 'token.update', changed: false }, 'nothing to do is recorded as such')
  await ops.withActor({ name: 'admin-api', client: '10.0.0.7' }).updateGrants(tok.id, { enabled: true })
  t.match((await tokens.audit.list()).at(-1), { op: 'token.update', actor: 'admin-api', client: '10.0.0.7' })
  t.notMatch(JSON.stringify(audit), tok.token)
})

t.test('every update publishes the token hash on the invalidation channel', async (t) => {
  const tok = await tokens.create({ kind: 'api', grants: ['admin'], expiresIn: '1h' })
  const sub = new Redis(redis.url)
  t.teardown(() => sub.disconnect())
  const heard: string[] = []
  sub.on('message', (_ch, msg) => heard.push(msg))
  await sub.subscribe(keys.events())
  await ops.updateGrants(tok.id, { add: ['bucket:*:ReadBucket'] })
  await ops.updateGrants(tok.id, { add: ['bucket:*:ReadBucket'] })
  await probeUntil(
    () => heard.length,
    (n) => n >= 2,
    { intervalMs: 5 },
  )
  t.same(heard, [hashSecret(tok.token), hashSecret(tok.token)], 'also when nothing changed')
})

t.test('an unreadable grants field is replaced by what is added', async (t) => {
  const tok = await tokens.create({ kind: 'api', grants: ['admin'], expiresIn: '1h' })
  await redis.client.hset(keys.token(hashSecret(tok.token) as TokenHash), 'grants', '{broken')
  t.equal((await tokens.show(tok.id))?.grants, null, 'shown as unreadable')
  const info = await ops.updateGrants(tok.id, { add: ['device:d1:Read'] })
  t.same(info.grants, ['device:d1:Read'])
  t.same((await stored(tok.token))?.grants?.length, 1)
})

t.test('mistakes are refused with what to change', async (t) => {
  const album = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  const api = await tokens.create({ kind: 'api', grants: ['admin'], expiresIn: '1h' })
  await tokens.revoke(api.id)
  const cases: [string, () => Promise<unknown>, typeof AdminInputError, RegExp][] = [
    [
      'grants on an album token',
      () => ops.updateGrants(album.id, { add: ['admin'] }),
      AdminInputError,
      /only api tokens carry grants/,
    ],
    [
      'enabling a revoked token',
      () => ops.updateGrants(api.id, { enabled: true }),
      AdminInputError,
      /revocation is permanent/,
    ],
    ['nothing to change', () => ops.updateGrants(api.id, {}), AdminInputError, /nothing to change/],
    [
      'a bad grant',
      () => ops.updateGrants(api.id, { add: ['device:d1'] }),
      AdminInputError,
      /TYPE:ID:ACTION/,
    ],
    [
      'a control character',
      () => ops.updateGrants(api.id, { description: 'a\nb' }),
      AdminInputError,
      /control characters/,
    ],
    [
      'an unknown id',
      () => ops.updateGrants('tok_nope', { enabled: false }),
      AdminNotFound,
      /no token with id "tok_nope"/,
    ],
  ]
  for (const [what, run, type, message] of cases) {
    await t.rejects(run(), type, what)
    await t.rejects(run(), { message }, what)
  }
  t.equal((await tokens.show(album.id))?.status, 'active', 'a refused update changed nothing')
  t.equal(
    (await ops.updateGrants(album.id, { description: 'album tokens take descriptions' })).description,
    'album tokens take descriptions',
  )
})
