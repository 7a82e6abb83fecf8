// Membership listings (issue 14.6) against a real redis-server: `album members ALBUM` and `user
// albums USER`, sorted and paged like `token list` ({items, nextCursor}, --limit, --cursor), and
// the same under the admin API (`GET /albums/{album}/members`, `GET /users/{user}/albums`); study
// sets the same way (`album studies`, `inbox studies`, `GET /albums/{album}/studies`,
// `GET /users/{user}/inbox`); `token prune-index` fills album members from older memberships.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runCliCaptured } from '../helpers/cli.js'
import { startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'

const KEY = 'test-admin-key-0123456789abcdefghijklmnop'
const redis = await startRedis()
t.teardown(redis.stop)
const gate = await startGate({
  redisUrl: redis.url,
  upstream: 'http://127.0.0.1:9/dicom-web',
  config: { admin: { port: 0, key: KEY } },
})
t.teardown(gate.stop)
const adminUrl = `http://127.0.0.1:${gate.app.adminAddress?.port}`
const dir = await mkdtemp(join(tmpdir(), 'tokengate-members-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = join(dir, 'tokengate.yaml')
await writeFile(
  config,
  `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n`,
)
const cli = (args: string[]) => runCliCaptured([...args, '--config', config])
type Page = { items: string[]; nextCursor: string | null }

const users = Array.from({ length: 25 }, (_, i) => `user${String(i).padStart(2, '0')}`)
for (const u of users) await cli(['album', 'add-member', 'TEACH', u])
for (const a of ['A3', 'A1', 'A2']) await cli(['album', 'add-member', a, 'user00'])
await cli(['album', 'remove-member', 'TEACH', 'user05'])

t.test('album members pages through the members, sorted, without the removed one', async (t) => {
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const res = await cli([
      'album',
      'members',
      'TEACH',
      '--limit',
      '10',
      '--json',
      ...(cursor ? ['--cursor', cursor] : []),
    ])
    t.equal(res.code, 0, res.stderr)
    const page = JSON.parse(res.stdout) as Page
    seen.push(...page.items)
    cursor = page.nextCursor
  } while (cursor)
  t.same(
    seen,
    users.filter((u) => u !== 'user05'),
  )
  const text = await cli(['album', 'members', 'TEACH', '--limit', '2'])
  t.match(text.stdout, /^user00\nuser01\nnext page: --cursor \S+\n$/)
  t.equal((await cli(['album', 'members', 'NOBODY'])).stdout, 'no members\n')
})

t.test('user albums lists the albums of a user, and the admin API pages both', async (t) => {
  t.same(JSON.parse((await cli(['user', 'albums', 'user00', '--json'])).stdout), {
    items: ['A1', 'A2', 'A3', 'TEACH'],
    nextCursor: null,
  })
  const get = (path: string) => send(adminUrl, { method: 'GET', path, headers: bearer(KEY) })
  const first = (await get('/users/user00/albums?limit=3')).json() as Page
  t.same(first.items, ['A1', 'A2', 'A3'])
  const second = (await get(`/users/user00/albums?limit=3&cursor=${first.nextCursor}`)).json() as Page
  t.same(second, { items: ['TEACH'], nextCursor: null })
  const members = (await get('/albums/TEACH/members?limit=100')).json() as Page
  t.equal(members.items.length, 24)
  const bad = await get('/albums/TEACH/members?limit=0')
  t.equal(bad.status, 400)
  t.match(bad.json(), { field: 'limit' })
})

t.test('token prune-index fills album members from memberships made before that index', async (t) => {
  // As an older tokengate left them: the user→albums sets only, no album→members set.
  await redis.client.sadd('tg:user:old1:albums', 'OLD', 'TEACH')
  await redis.client.sadd('tg:user:old2:albums', 'OLD')
  // A user record whose id ends in ":albums" matches the SCAN pattern too: it is not a set.
  await redis.client.hset('tg:user:odd:albums', 'name', 'Odd')
  t.equal((await cli(['album', 'members', 'OLD'])).stdout, 'no members\n', 'unknown before the backfill')

  const res = await cli(['token', 'prune-index', '--json'])
  t.equal(res.code, 0, res.stderr)
  t.match(JSON.parse(res.stdout), { membersAdded: 3 })
  t.same(JSON.parse((await cli(['album', 'members', 'OLD', '--json'])).stdout), {
    items: ['old1', 'old2'],
    nextCursor: null,
  })
  const teach = JSON.parse((await cli(['album', 'members', 'TEACH', '--limit', '1000', '--json'])).stdout)
  t.equal(teach.items.length, 25, 'the 24 members and old1')
  t.ok(teach.items.includes('old1'))
  t.notOk(teach.items.includes('user05'), 'a removed member is not brought back')
  t.equal(await redis.client.type('tg:user:odd:albums'), 'hash', 'the user record is left alone')

  const again = await cli(['token', 'prune-index'])
  t.match(again.stdout, /added 0 album members\n$/, 'running it again changes nothing')
})

// Study sets: 250 UIDs, more than the default page of 100.
const getPage = (path: string) => send(adminUrl, { method: 'GET', path, headers: bearer(KEY) })

// 250 UIDs: more than the default page of 100.
const uids = Array.from({ length: 250 }, (_, i) => `1.2.840.${1000 + i}`)
await writeFile(join(dir, 'uids.txt'), uids.join('\n'))
/** Setup steps: a failure stops the file (top-level assertions would end the root test). */
const must = async (args: string[]) => {
  const res = await cli(args)
  if (res.code !== 0) throw new Error(`${args.join(' ')}: ${res.stderr}`)
}
await must(['album', 'import', 'BIG', join(dir, 'uids.txt')])
await must(['album', 'remove-study', 'BIG', '1.2.840.1005'])
await must(['inbox', 'add-study', 'ann', '1.2.3', '1.2.1'])
const expected = uids.filter((u) => u !== '1.2.840.1005').sort()

t.test('album studies prints a page of 100 by default, and --cursor walks every UID once', async (t) => {
  const first = JSON.parse((await cli(['album', 'studies', 'BIG', '--json'])).stdout) as Page
  t.same(Object.keys(first).sort(), ['items', 'nextCursor'])
  t.equal(first.items.length, 100, 'the default --limit')
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const res = await cli([
      'album',
      'studies',
      'BIG',
      '--limit',
      '60',
      '--json',
      ...(cursor ? ['--cursor', cursor] : []),
    ])
    t.equal(res.code, 0, res.stderr)
    const page = JSON.parse(res.stdout) as Page
    t.ok(page.items.length <= 60)
    seen.push(...page.items)
    cursor = page.nextCursor
  } while (cursor)
  t.same(seen, expected, 'sorted, each once, without the removed one')
  const text = await cli(['album', 'studies', 'BIG', '--limit', '2'])
  t.equal(
    text.stdout,
    `${expected[0]}\n${expected[1]}\nnext page: --cursor ${Buffer.from(expected[1] as string).toString('base64url')}\n`,
  )
  t.equal((await cli(['album', 'studies', 'NONE'])).stdout, 'no studies in album NONE\n')
  const bad = await cli(['album', 'studies', 'BIG', '--limit', '0'])
  t.equal(bad.code, 2, 'a bad --limit is a usage error')
  t.match(bad.stderr, /limit must be a whole number/)
})

t.test('inbox studies pages the same way', async (t) => {
  t.same(JSON.parse((await cli(['inbox', 'studies', 'ann', '--json', '--limit', '1'])).stdout), {
    items: ['1.2.1'],
    nextCursor: Buffer.from('1.2.1').toString('base64url'),
  })
  t.equal((await cli(['inbox', 'studies', 'ann'])).stdout, '1.2.1\n1.2.3\n')
})

t.test('the admin API serves the same pages, and refuses a bad limit', async (t) => {
  const first = await getPage('/albums/BIG/studies')
  t.equal(first.status, 200, first.text)
  t.same((first.json() as Page).items, expected.slice(0, 100))
  const cli2 = JSON.parse((await cli(['album', 'studies', 'BIG', '--limit', '7', '--json'])).stdout) as Page
  const api2 = (await getPage('/albums/BIG/studies?limit=7')).json() as Page
  t.same(api2, cli2, 'the CLI and the API give the same page')
  const next = (await getPage(`/albums/BIG/studies?limit=7&cursor=${api2.nextCursor}`)).json() as Page
  t.same(next.items, expected.slice(7, 14))
  t.same((await getPage('/users/ann/inbox')).json(), { items: ['1.2.1', '1.2.3'], nextCursor: null })
  const bad = await getPage('/albums/BIG/studies?limit=0')
  t.equal(bad.status, 400)
  t.match(bad.json(), { field: 'limit' })
  t.equal((await getPage('/albums/BIG/studies?order=x')).status, 400, 'an unknown parameter is refused')
})
