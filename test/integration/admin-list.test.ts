// Token listing (admin/token-listing.ts, admin/token-query.ts) against a real redis-server: pages
// with a cursor that neither skips nor repeats a token (ties in the sort key included), every
// filter, each sort in both orders, the CLI's table within 100 columns and its JSON page, and the
// admin API's `GET /tokens` page and refusals naming JSON fields.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { TokenInfo } from '../../src/admin/token-view.js'
import { TokenAdmin } from '../../src/admin/tokens.js'
import { makeKeys } from '../../src/token/keys.js'
import { runCliCaptured } from '../helpers/cli.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(redis.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-admin-list-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = join(dir, 'tokengate.yaml')
await writeFile(
  config,
  `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n`,
)

const T0 = Date.parse('2026-06-01T00:00:00Z')
const DAY = 86_400_000
let clock = T0
const keys = makeKeys('tg:')
const admin = new TokenAdmin(redis.client, keys, {
  secretPrefix: 'tg_',
  expiredGrace: 365 * DAY,
  now: () => clock,
})

type Page = { items: TokenInfo[]; nextCursor: string | null }

/** Every page of a query, following nextCursor. */
async function all(input: Record<string, unknown>): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page: Page = await admin.listPage({ ...input, ...(cursor ? { cursor } : {}) })
    ids.push(...page.items.map((i) => i.id))
    cursor = page.nextCursor ?? undefined
    pages++
  } while (cursor)
  return { ids, pages }
}

// 60 tokens over 60 days (one a day), then 40 created in the same millisecond (ties).
const created: { id: string; user: string; album: string; day: number }[] = []
for (let i = 0; i < 100; i++) {
  clock = T0 + Math.min(i, 60) * DAY
  const user = `u${i % 3}`
  const album = `A${i % 4}`
  const c = await admin.create({
    kind: i % 5 === 0 ? 'user' : 'album',
    user,
    ...(i % 5 === 0 ? {} : { album, perms: 'read' }),
    expiresAt: T0 + (200 - i) * DAY,
    ...(i % 10 === 1 ? { attrs: { department: 'radiology' } } : {}),
  })
  created.push({ id: c.id, user, album: i % 5 === 0 ? '' : album, day: Math.min(i, 60) })
}
clock = T0 + 100 * DAY
const byCreated = [...created].sort((a, b) => a.day - b.day || (a.id < b.id ? -1 : 1)).map((c) => c.id)

t.test(
  'pages of 7 walk every token once, in created order, ties in the same millisecond included',
  async (t) => {
    const { ids, pages } = await all({ limit: 7 })
    t.same(ids, byCreated)
    t.equal(pages, Math.ceil(100 / 7))
  },
)

t.test('--desc walks the same tokens newest first', async (t) => {
  const { ids } = await all({ limit: 9, desc: true })
  t.same(ids, [...byCreated].reverse())
})

t.test('sort by expires, and by last use, page in their key order', async (t) => {
  const { ids } = await all({ limit: 11, sort: 'expires' })
  const expiries = await Promise.all(ids.map(async (id) => (await admin.show(id))?.expiresAt ?? ''))
  t.equal(ids.length, 100)
  t.same(expiries, [...expiries].sort(), 'ascending expiry')
  const used = created[5]?.id as string
  const hash = await redis.client.get(`tg:id:${used}`)
  await redis.client.hset(`tg:token:${hash}`, 'lastUsedAt', String(T0 + 99 * DAY))
  const last = await all({ limit: 13, sort: 'last-used', desc: true })
  t.equal(last.ids.length, 100)
  t.equal(last.ids[0], used, 'the one used token first')
})

t.test('each filter selects exactly the tokens it names', async (t) => {
  await admin.revoke(created[2]?.id as string)
  await admin.disable(created[3]?.id as string)
  const ids = async (input: Record<string, unknown>) => (await all({ limit: 6, ...input })).ids.sort()
  const want = (pred: (c: (typeof created)[number], i: number) => boolean) =>
    created
      .filter(pred)
      .map((c) => c.id)
      .sort()
  t.same(
    await ids({ user: 'u1' }),
    want((c) => c.user === 'u1'),
    'user',
  )
  t.same(
    await ids({ album: 'A2' }),
    want((c) => c.album === 'A2'),
    'album',
  )
  t.same(
    await ids({ user: 'u1', album: 'A2' }),
    want((c) => c.user === 'u1' && c.album === 'A2'),
    'both',
  )
  t.same(
    await ids({ kind: 'user' }),
    want((_c, i) => i % 5 === 0),
    'kind',
  )
  t.same(await ids({ status: 'revoked' }), [created[2]?.id], 'revoked')
  t.same(await ids({ status: 'disabled' }), [created[3]?.id], 'disabled')
  // Expiry T0 + (200 - i) days, now T0 + 100 days: i > 100 never, so none expired yet.
  t.same(await ids({ status: 'expired' }), [], 'expired')
  t.equal((await ids({ status: 'active' })).length, 98, 'active')
  t.same(
    await ids({ attr: 'department=radiology' }),
    want((_c, i) => i % 10 === 1),
    'attr',
  )
  const day = (n: number) => new Date(T0 + n * DAY).toISOString()
  t.same(
    await ids({ createdBefore: day(10) }),
    want((c) => c.day < 10),
    'created before',
  )
  t.same(
    await ids({ createdAfter: day(55) }),
    want((c) => c.day >= 55),
    'created after',
  )
  t.same(
    await ids({ createdAfter: day(55), desc: true }),
    want((c) => c.day >= 55),
    'created after, newest first',
  )
  t.same(
    await ids({ expiresBefore: day(110), sort: 'expires' }),
    want((_c, i) => i > 90),
    'expires before',
  )
  t.same(
    await ids({ expiresAfter: day(195) }),
    want((_c, i) => i <= 5),
    'expires after',
  )
  t.equal((await ids({ unusedSince: day(50) })).length, 99, 'unused since: all but the one used')
})

/** The field an AdminInputError names, or 'accepted'. */
async function refusedField(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => 'accepted',
    (err: { field?: string }) => err.field,
  )
}

t.test('a cursor is refused for another sort, and malformed input names its JSON field', async (t) => {
  const page = await admin.listPage({ limit: 1 })
  t.equal(
    await refusedField(admin.listPage({ cursor: page.nextCursor as string, sort: 'expires' })),
    'cursor',
  )
  t.equal(await refusedField(admin.listPage({ cursor: 'garbage' })), 'cursor')
  t.equal(await refusedField(admin.listPage({ status: 'gone' })), 'status')
  t.equal(await refusedField(admin.listPage({ limit: 0 })), 'limit')
  t.equal(await refusedField(admin.listPage({ createdBefore: 'yesterday' })), 'createdBefore')
})

t.test('token list prints a table within 100 columns, --wide in full, --json the page', async (t) => {
  await admin.create({
    kind: 'album',
    album: 'a-very-long-album-name-that-goes-on',
    user: 'a-very-long-user-name-as-well',
    perms: 'read',
    expiresIn: '30d',
    description: 'x'.repeat(120),
  })
  const res = await runCliCaptured(['token', 'list', '--limit', '200', '--config', config])
  t.equal(res.code, 0, res.stderr)
  const lines = res.stdout.trimEnd().split('\n')
  t.equal(lines.length, 102, 'a header and 101 tokens')
  t.ok(Math.max(...lines.map((l) => l.length)) <= 100, 'no line longer than 100 columns')
  t.match(res.stdout, /a-very-lon…/)
  const wide = await runCliCaptured([
    'token',
    'list',
    '--album',
    'a-very-long-album-name-that-goes-on',
    '--wide',
    '--config',
    config,
  ])
  t.match(wide.stdout, /a-very-long-album-name-that-goes-on/)
  t.match(wide.stdout, /x{120}/)
  const first = await runCliCaptured(['token', 'list', '--limit', '2', '--json', '--config', config])
  const page = JSON.parse(first.stdout) as Page
  t.equal(page.items.length, 2)
  t.type(page.nextCursor, 'string')
  const text = await runCliCaptured(['token', 'list', '--limit', '2', '--config', config])
  t.match(text.stdout, `next page: --cursor ${page.nextCursor}`)
  const second = await runCliCaptured([
    'token',
    'list',
    '--limit',
    '2',
    '--cursor',
    page.nextCursor as string,
    '--json',
    '--config',
    config,
  ])
  t.same(
    (JSON.parse(second.stdout) as Page).items.map((i) => i.id),
    byCreated.slice(2, 4),
    'the cursor continues where the first page ended',
  )
  const bad = await runCliCaptured(['token', 'list', '--status', 'gone', '--config', config])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /status must be one of active, expired, revoked, disabled/)
})
