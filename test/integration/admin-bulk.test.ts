// The operator's scale (issue 14) against a real redis-server and a running in-process gate: among
// 100,000 tokens (written in pipelines by test/helpers/token-population.ts, create's layout), a page of
// 100 is the right one at the start, deep in, newest first and for one album; a bulk revoke of
// 10,000 tokens by filter (dry run first) completes, reaches the running proxy (a token it had
// cached is refused on its next request), and is audited as ONE operation with its count; bulk
// disable/enable and delete by ids; and the admin API's `POST /tokens/revoke`. How long a page
// takes is printed as a comment, never asserted (a loaded CI machine is no yardstick):
// `node bench/admin-list.js` measures it.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { TokenAdmin } from '../../src/admin/tokens.js'
import { makeKeys } from '../../src/token/keys.js'
import { runCliCaptured } from '../helpers/cli.js'
import { startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'
import { seedTokens } from '../helpers/token-population.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const KEY = 'test-admin-key-0123456789abcdefghijklmnop'
const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  // A long cache: only the published invalidation can make the gate see a revocation.
  config: { admin: { port: 0, key: KEY }, cache: { ttl: '1h' } },
})
t.teardown(gate.stop)
const adminUrl = `http://127.0.0.1:${gate.app.adminAddress?.port}`
const dir = await mkdtemp(join(tmpdir(), 'tokengate-admin-bulk-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = await writeConfig(
  dir,
  'tokengate.yaml',
  `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n`,
)

// Two days back: the running gate checks expiry against the real clock.
const T0 = Math.floor(Date.now() / 1000) * 1000 - 2 * 86_400_000
const TOTAL = 100_000
const COHORT = { from: 40_000, to: 50_000 } // created in seconds [from, to): the 10,000 to revoke
let clock = T0
const keys = makeKeys('tg:')
const admin = new TokenAdmin(redis.client, keys, {
  secretPrefix: 'tg_',
  expiredGrace: 60_000,
  now: () => clock,
})

const through = async (token: string) =>
  (await send(gate.url, { method: 'GET', path: '/api/studies', headers: bearer(token) })).status

// The population: token n created at T0 + n s (so the cohort is a createdAt window), pipelined.
const started = performance.now()
const secrets = await seedTokens(
  redis.client,
  keys,
  TOTAL,
  (n) => ({ album: `A${n % 50}`, user: '', createdAt: T0 + n * 1000, expiresAt: T0 + 300 * 86_400_000 }),
  (n) => n === 0 || n === COHORT.from || n === COHORT.to,
)
clock = T0 + TOTAL * 1000
t.comment(`created ${TOTAL} tokens in ${Math.round(performance.now() - started)} ms`)

const iso = (n: number) => new Date(T0 + n * 1000).toISOString()

t.test('a page of 100 among 100,000: at the start, deep in, newest first and for one album', async (t) => {
  // Each page's first token, and what every token of it shares.
  const pages = [
    { input: {}, first: iso(0) },
    { input: { createdAfter: iso(77_777) }, first: iso(77_777) },
    { input: { desc: true }, first: iso(TOTAL - 1) },
    { input: { album: 'A7' }, first: iso(7), album: 'A7' },
  ]
  for (const { input, first, album } of pages) {
    const t0 = performance.now()
    const page = await admin.listPage({ ...input, limit: 100 })
    const ms = performance.now() - t0
    const name = JSON.stringify(input)
    t.equal(page.items.length, 100, name)
    t.equal(page.items[0]?.createdAt, first, `${name}: its first token`)
    if (album)
      t.ok(
        page.items.every((i) => i.album === album),
        `${name}: all of album ${album}`,
      )
    t.comment(`page of 100 ${name}: ${ms.toFixed(1)} ms`)
  }
  const deep = await admin.listPage({ createdAfter: iso(77_777), limit: 3 })
  t.same(
    deep.items.map((i) => i.createdAt),
    [iso(77_777), iso(77_778), iso(77_779)],
  )
})

t.test(
  'bulk revoke of 10,000 tokens by filter: dry run, then revoked, seen by the running gate, audited once',
  async (t) => {
    const inCohort = secrets.get(COHORT.from) as { id: string; token: string }
    const after = secrets.get(COHORT.to) as { id: string; token: string }
    t.equal(await through(inCohort.token), 200, 'the gate has the token cached as valid')
    const filter = ['--filter', '--created-after', iso(COHORT.from), '--created-before', iso(COHORT.to)]
    const dry = await runCliCaptured(['token', 'revoke', ...filter, '--dry-run', '--config', config])
    t.equal(dry.code, 0, dry.stderr)
    t.match(dry.stdout, /^would revoke 10000 tokens:\n {2}tok_/)
    t.match(dry.stdout, '… and 9980 more')
    t.equal(
      (await admin.listPage({ status: 'revoked', limit: 1 })).items.length,
      0,
      'a dry run changes nothing',
    )

    const before = await redis.client.xlen('tg:audit')
    const t0 = performance.now()
    const res = await runCliCaptured([
      'token',
      'revoke',
      ...filter,
      '--json',
      '--actor',
      'ops',
      '--config',
      config,
    ])
    const ms = performance.now() - t0
    t.equal(res.code, 0, res.stderr)
    t.match(JSON.parse(res.stdout), { action: 'revoke', matched: 10_000, changed: 10_000, dryRun: false })
    t.comment(`bulk revoke of 10,000 by filter: ${Math.round(ms)} ms`)
    await waitFor('the gate refusing the revoked token', async () => (await through(inCohort.token)) === 401)
    t.equal(await through(after.token), 200, 'a token outside the filter still works')
    t.equal(await redis.client.xlen('tg:audit'), before + 1, 'one audit entry')
    const last = (await redis.client.xrevrange('tg:audit', '+', '-', 'COUNT', 1))[0]
    const fields = last?.[1] ?? []
    const entry: Record<string, string> = {}
    for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i] as string] = fields[i + 1] as string
    t.match(entry, {
      actor: 'ops',
      op: 'token.bulk-revoke',
      count: '10000',
      filter: /createdAfter=.*createdBefore=|createdBefore=.*createdAfter=/,
    })
    const revoked = await admin.listPage({ status: 'revoked', createdAfter: iso(COHORT.from), limit: 1000 })
    t.equal(revoked.items.length, 1000)
    t.equal(revoked.items[0]?.id, inCohort.id)
    const again = await admin.bulk.apply('revoke', {
      filter: { createdAfter: iso(COHORT.from), createdBefore: iso(COHORT.to) },
    })
    t.match(again, { matched: 10_000, changed: 0 }, 'revoking again changes nothing')
  },
)

t.test(
  'bulk disable and enable by ids, and delete of revoked tokens, through the CLI and the admin API',
  async (t) => {
    const page = await admin.listPage({ createdAfter: iso(60_000), limit: 3 })
    const ids = page.items.map((i) => i.id)
    const dis = await runCliCaptured(['token', 'disable', ...ids, '--config', config])
    t.equal(dis.code, 0, dis.stderr)
    t.equal(dis.stdout, 'disabled 3 tokens\n')
    t.equal((await admin.show(ids[0] as string))?.status, 'disabled')
    const en = await send(adminUrl, {
      method: 'POST',
      path: '/tokens/enable',
      headers: { 'content-type': 'application/json', ...bearer(KEY) },
      body: JSON.stringify({ ids: [...ids, 'tok_nonexistent'] }),
    })
    t.equal(en.status, 200, en.text)
    t.match(en.json(), { action: 'enable', matched: 3, changed: 3, notFound: ['tok_nonexistent'] })
    t.equal((await admin.show(ids[0] as string))?.status, 'active')

    const live = await runCliCaptured(['token', 'delete', ids[0] as string, '--config', config])
    t.equal(live.code, 2, 'a live token is not deleted')
    t.match(live.stderr, /revoke first/)
    const rev = await send(adminUrl, {
      method: 'POST',
      path: '/tokens/revoke',
      headers: { 'content-type': 'application/json', ...bearer(KEY) },
      body: JSON.stringify({ ids }),
    })
    t.match(rev.json(), { matched: 3, changed: 3 })
    const del = await runCliCaptured(['token', 'delete', ...ids, '--config', config])
    t.equal(del.code, 0, del.stderr)
    t.equal(del.stdout, 'deleted 3 tokens\n')
    t.equal(await admin.show(ids[0] as string), null, 'gone from Redis')
    const listed = await admin.listPage({ createdAfter: iso(60_000), limit: 1 })
    t.not(listed.items[0]?.id, ids[0], 'and from the listing at once')
    t.equal(await redis.client.zscore('tg:tokens:by-created', ids[0] as string), null)
    t.equal(await redis.client.sismember('tg:tokens', ids[1] as string), 0)

    const both = await send(adminUrl, {
      method: 'POST',
      path: '/tokens/revoke',
      headers: { 'content-type': 'application/json', ...bearer(KEY) },
      body: JSON.stringify({ filter: {} }),
    })
    t.equal(both.status, 400)
    t.match(both.json(), { field: 'filter' })
    const flags = await send(adminUrl, {
      method: 'POST',
      path: '/tokens/revoke',
      headers: { 'content-type': 'application/json', ...bearer(KEY) },
      body: JSON.stringify({ filter: { status: 'gone' } }),
    })
    t.equal(flags.status, 400)
    t.notMatch(flags.text, /--/, 'the refusal names JSON fields, not CLI flags')
  },
)
