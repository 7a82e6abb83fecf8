// The write order of token administration (issue 12, "revoke-all race") against a real
// redis-server: a `token list` interleaved with a `token create` at each of its writes (through
// the create hook, so the interleaving is deterministic), and a create cut short after each
// write, never leave a live token that `token revoke --user` cannot reach; `list` never deletes
// index entries; `token prune-index` removes only ids whose keys have expired out of Redis.
import { createHash } from 'node:crypto'
import t from 'tap'
import { type CreateStep, TokenAdmin } from '../../src/admin/tokens.js'
import { makeKeys } from '../../src/token/keys.js'
import { fromHash, type TokenHash } from '../../src/token/record.js'
import { runCliCaptured } from '../helpers/cli.js'
import { writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(redis.stop)
const keys = makeKeys('tg:')

function admin(afterWrite?: (step: CreateStep) => Promise<void>): TokenAdmin {
  return new TokenAdmin(redis.client, keys, {
    secretPrefix: 'tg_',
    expiredGrace: 60_000,
    ...(afterWrite ? { afterWrite } : {}),
  })
}

/** The stored record of a token's secret. */
async function recordOf(token: string) {
  const hash = createHash('sha256').update(token).digest('hex') as TokenHash
  return fromHash(await redis.client.hgetall(keys.token(hash)))
}

const STEPS: CreateStep[] = ['record', 'id', 'index']

for (const step of STEPS) {
  t.test(
    `a token list run just after create's "${step}" write does not hide the new token from revoke --user`,
    async (t) => {
      const user = `race-${step}`
      const lister = admin()
      let listed = false
      const created = await admin(async (s) => {
        if (s !== step) return
        await lister.list({ user })
        await lister.list()
        listed = true
      }).create({ kind: 'user', user, expiresIn: '1h' })
      t.ok(listed, 'the list ran in the middle of the create')
      t.equal(await redis.client.sismember(keys.userTokens(user), created.id), 1, 'still in the index')
      t.equal(await lister.revokeUser(user), 1, 'revoke --user counts it')
      t.ok(((await recordOf(created.token))?.revokedAt ?? 0) > 0, 'the token is revoked')
    },
  )

  t.test(`a create cut short after its "${step}" write leaves no token revoke --user misses`, async (t) => {
    const user = `crash-${step}`
    const crash = new Error('crash')
    await t.rejects(
      admin(async (s) => {
        if (s === step) throw crash
      }).create({ kind: 'user', user, expiresIn: '1h' }),
      crash,
    )
    // Find the secret's record, if any was written, by scanning (the test knows no secret).
    const mine: string[] = []
    for (const key of await redis.client.keys('tg:token:*')) {
      const r = fromHash(await redis.client.hgetall(key))
      if (r?.user === user) mine.push(key)
    }
    t.equal(mine.length, 1, 'the record was written first')
    await admin().revokeUser(user)
    for (const key of mine) {
      const r = fromHash(await redis.client.hgetall(key))
      t.ok((r?.revokedAt ?? 0) > 0, 'the half-created token is revoked all the same')
    }
  })
}

t.test('token list never deletes an index entry, even one whose record is gone', async (t) => {
  const a = admin()
  const created = await a.create({ kind: 'user', user: 'gone', expiresIn: '1h' })
  await redis.client.del(keys.id(created.id))
  t.same(
    (await a.list({ user: 'gone' })).map((x) => x.id),
    [],
    'a token with no id key is not listed',
  )
  t.equal(await redis.client.sismember(keys.userTokens('gone'), created.id), 1, 'the user index keeps it')
  t.equal(await redis.client.sismember(keys.allTokens(), created.id), 1, 'the global index keeps it')
})

t.test('token prune-index removes only ids whose id key has expired out of Redis', async (t) => {
  const a = admin()
  await a.pruneIndex() // what earlier tests left
  const kept = await a.create({ kind: 'album', album: 'PA', user: 'pruner', perms: 'read', expiresIn: '1h' })
  const gone = await a.create({ kind: 'album', album: 'PA', user: 'pruner', perms: 'read', expiresIn: '1h' })
  await redis.client.del(keys.id(gone.id))
  const pruned = await a.pruneIndex()
  t.equal(pruned.removed, 1)
  for (const set of [keys.allTokens(), keys.userTokens('pruner'), keys.albumTokens('PA')]) {
    t.equal(await redis.client.sismember(set, kept.id), 1, `${set} keeps the live token`)
    t.equal(await redis.client.sismember(set, gone.id), 0, `${set} lost the expired one`)
  }
  const events = await a.audit.list()
  t.match(events.at(-1), { op: 'token.prune-index', count: 1 })

  const dir = t.testdir({})
  const config = await writeConfig(
    dir,
    'tokengate.yaml',
    `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/x" }]\n`,
  )
  const res = await runCliCaptured(['token', 'prune-index', '--config', config])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /removed 0 index entries/)
})
