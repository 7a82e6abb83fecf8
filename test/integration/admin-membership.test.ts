// Membership listings (issue 14.6) against a real redis-server: `album members ALBUM` and `user
// albums USER`, sorted and paged like `token list` ({items, nextCursor}, --limit, --cursor), and
// the same under the admin API (`GET /albums/{album}/members`, `GET /users/{user}/albums`).
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
