// Reading the audit like a log (issue 14.5) against a real redis-server: pages with a cursor that
// reach every entry (no ceiling), filters by token, user, album, actor, op (or family), since and
// until, each op named for what it did (`count=2`, never `revoked=2`), `--follow` printing new
// entries (XREAD BLOCK, bounded by the test), and `GET /audit` the same.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import type { AuditEvent } from '../../src/admin/audit.js'
import { TokenAdmin } from '../../src/admin/tokens.js'
import { makeKeys } from '../../src/token/keys.js'
import { runCliCaptured } from '../helpers/cli.js'
import { startRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-audit-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = join(dir, 'tokengate.yaml')
await writeFile(
  config,
  `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n`,
)
const keys = makeKeys('tg:')
const as = (name: string) =>
  new TokenAdmin(redis.client, keys, { secretPrefix: 'tg_', expiredGrace: 60_000, actor: { name } })
const alice = as('alice')
const bob = as('bob')

// 300 changes: alice adds members to album M (250), bob creates 50 tokens.
for (let i = 0; i < 250; i++) await alice.addMember('M', `u${i}`)
const made: string[] = []
for (let i = 0; i < 50; i++)
  made.push((await bob.create({ kind: 'album', album: 'B', perms: 'read', expiresIn: '1d' })).id)

t.test('pages with a cursor reach every entry, newest page first, each page oldest first', async (t) => {
  const seen: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page = await alice.audit.page({ limit: 70, ...(cursor ? { before: cursor } : {}) })
    t.same(
      page.events.map((e) => e.id),
      [...page.events.map((e) => e.id)].sort(),
      'oldest first within a page',
    )
    seen.unshift(...page.events.map((e) => e.id))
    cursor = page.nextCursor ?? undefined
    pages++
  } while (cursor)
  t.equal(seen.length, 300)
  t.equal(new Set(seen).size, 300, 'none twice')
  t.equal(pages, 5)
})

t.test('filters select by token, user, album, actor and op family', async (t) => {
  const run = async (args: string[]) => {
    const res = await runCliCaptured(['audit', ...args, '--limit', '1000', '--json', '--config', config])
    t.equal(res.code, 0, res.stderr)
    return (JSON.parse(res.stdout) as { events: AuditEvent[] }).events
  }
  t.match(await run(['--token', made[3] as string]), [{ op: 'token.create', tokenId: made[3] }])
  t.equal((await run(['--token', made[3] as string])).length, 1)
  t.equal((await run(['--user', 'u7'])).length, 1)
  t.equal((await run(['--album', 'M'])).length, 250)
  t.equal((await run(['--actor', 'bob'])).length, 50)
  t.equal((await run(['--op', 'token'])).length, 50, 'a family')
  t.equal((await run(['--op', 'album.add-member'])).length, 250)
  t.equal((await run(['--until', '2000-01-01'])).length, 0)
  t.equal((await run(['--since', '1h', '--op', 'token.create'])).length, 50)
  const bad = await runCliCaptured(['audit', '--cursor', 'nope', '--config', config])
  t.equal(bad.code, 2)
})

t.test('a count is shown as count=, and the text table pages with next page: --cursor', async (t) => {
  await alice.audit.record({ name: 'alice' }, { op: 'album.add-studies', album: 'S', count: 2 })
  const res = await runCliCaptured(['audit', '--limit', '2', '--config', config])
  t.match(res.stdout, /album\.add-studies .*count=2/)
  t.notMatch(res.stdout, /revoked=/)
  t.match(res.stdout, /next page: --cursor \d+-\d+\n$/)
})

t.test('--follow prints entries written after it started', async (t) => {
  const conn = new Redis(redis.url)
  t.teardown(() => conn.disconnect())
  const follower = new TokenAdmin(conn, keys, { secretPrefix: 'tg_', expiredGrace: 60_000 })
  const got: AuditEvent[] = []
  let stop = false
  const following = follower.audit.follow((e) => got.push(e), {
    match: { actor: 'bob' },
    blockMs: 100,
    stop: () => stop,
  })
  // XREAD from '$' starts once the first call is sent: write after a first empty round.
  await waitFor('the follower blocking', async () =>
    /blocked_clients:1/.test(await redis.client.info('clients')),
  )
  await alice.addMember('F', 'nobody')
  const fresh = await bob.create({ kind: 'album', album: 'F', perms: 'read', expiresIn: '1d' })
  await waitFor("bob's new entry", () => got.length >= 1, 5000)
  stop = true
  await following
  t.same(
    got.map((e) => [e.op, e.tokenId]),
    [['token.create', fresh.id]],
    "only bob's entry",
  )
})
