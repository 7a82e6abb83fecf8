// The operations listener against real Redis and a real upstream: metric values move as expected
// after known requests, no label ever holds a token, path, user or study UID, promtool accepts the
// exposition, /healthz answers, and /readyz flips to 503 naming what failed (Redis stopped, an
// upstream down) and back when it returns.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { admin, type GateHandle, startGate } from '../helpers/gate.js'
import { basic, bearer, send } from '../helpers/http.js'
import { freePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { probeUntil } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const closedPort = await freePort()
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  config: {
    mounts: [
      { path: '/api', upstream: `${upstream.url}/dicom-web` },
      { path: '/down', upstream: `http://127.0.0.1:${closedPort}/dicom-web` },
    ],
  },
})
t.teardown(gate.stop)
const ops = `http://127.0.0.1:${gate.app.opsAddress?.port}`
const tokens = admin(redis.client)
const reader = await tokens.create({
  kind: 'album',
  album: 'A1',
  user: 'user-alice',
  perms: 'read',
  expiresIn: '1h',
})
const alice = await tokens.create({ kind: 'user', user: 'user-alice', expiresIn: '1h' })

async function scrape(): Promise<string> {
  const res = await send(ops, { path: '/metrics' })
  t.equal(res.status, 200)
  return res.text
}

/** `name{labels} value` lines of one family with a non-zero value (pre-bound series start at 0). */
function nonZero(text: string, family: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${family}{`) && !l.endsWith(' 0'))
    .sort()
}

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line ? Number(line.split(' ').pop()) : 0
}

t.test('request counters move exactly as the known requests say (golden file)', async (t) => {
  const studyUid = '1.2.840.99999.1.2.3'
  const requests: [string, Record<string, string>, number][] = [
    ['/api/studies', bearer(reader.token), 200], // allowed, cache miss
    ['/api/studies', basic(reader.token), 200], // allowed, cache hit
    [`/api/link/${reader.token}/studies/${studyUid}/metadata`, {}, 200],
    ['/api/studies?album=A2', bearer(reader.token), 404], // another album: insufficient_scope
    ['/api/studies?inbox=true', bearer(reader.token), 403],
    ['/api/studies', {}, 401], // no credential
    ['/api/studies', { authorization: 'Digest abc' }, 400], // malformed
    ['/api/studies', bearer('legacy-never-issued-token'), 401], // unknown
    ['/api/tools/find', bearer(reader.token), 404], // no rule
    ['/elsewhere', {}, 404], // no mount
    ['/down/studies', bearer(reader.token), 502], // upstream refused
    [`/api/studies?album=${'A1'}`, bearer(alice.token), 404], // not a member
  ]
  for (const [path, headers, status] of requests) {
    t.equal((await send(gate.url, { path, headers })).status, status, path.replace(reader.token, '<t>'))
  }
  const res = await send(gate.url, {
    method: 'POST',
    path: '/api/studies',
    headers: bearer(reader.token),
    body: 'x',
  })
  t.equal(res.status, 403, 'POST with a read token')
  const text = await scrape()
  const golden = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'metrics', 'requests.txt'), 'utf8')
  t.same(nonZero(text, 'tokengate_requests_total'), golden.trim().split('\n').sort())
  t.equal(value(text, 'tokengate_upstream_responses_total{mount="/api",status_class="2xx"}'), 3)
  t.equal(value(text, 'tokengate_token_cache_misses_total'), 3, 'reader, the unknown token, alice')
  t.ok(
    value(text, 'tokengate_token_cache_hits_total') >= 6,
    'the reader token from the cache after its first use',
  )
  t.equal(value(text, 'tokengate_auth_duration_seconds_count{cache="miss"}'), 3)
  t.equal(
    value(text, 'tokengate_auth_duration_seconds_count{cache="none"}'),
    4,
    '401 none, 400, 404 x2: no lookup',
  )
  t.equal(value(text, 'tokengate_upstream_headers_duration_seconds_count{mount="/api"}'), 3)
  t.equal(value(text, 'tokengate_request_duration_seconds_count{mount="/down",outcome="upstream_error"}'), 1)
  t.equal(value(text, 'tokengate_token_cache_entries'), 3)
  t.equal(value(text, 'tokengate_inflight_requests'), 0)
  t.match(text, /tokengate_build_info\{version="\d+\.\d+\.\d+"\} 1/)
  t.match(text, /tokengate_process_cpu_seconds_total/, 'Node default metrics')
})

t.test('bytes streamed each way are counted', async (t) => {
  const before = await scrape()
  const body = Buffer.alloc(300_000, 1)
  const res = await send(gate.url, {
    method: 'POST',
    path: '/api/studies',
    headers: bearer(alice.token),
    body,
  })
  t.equal(res.status, 200)
  const after = await scrape()
  const grew = (series: string) => value(after, series) - value(before, series)
  t.ok(grew('tokengate_bytes_total{direction="in"}') >= body.length, 'the upload')
  t.ok(grew('tokengate_bytes_total{direction="out"}') >= res.body.length, 'the answer')
})

t.test('an invalidation and a Redis command error are counted', async (t) => {
  const before = await scrape()
  const other = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '1h' })
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(other.token) })).status, 200)
  await tokens.revoke(other.id)
  const after = await probeUntil(
    scrape,
    (now) =>
      value(now, 'tokengate_invalidations_received_total') >
      value(before, 'tokengate_invalidations_received_total'),
    { intervalMs: 10 },
  )
  t.ok(
    value(after, 'tokengate_invalidations_received_total') >
      value(before, 'tokengate_invalidations_received_total'),
  )
})

t.test('no label value ever holds a token, an id, a user, a path or a study UID', async (t) => {
  const text = await scrape()
  for (const secret of [
    reader.token,
    alice.token,
    reader.id,
    alice.id,
    'user-alice',
    '1.2.840.99999',
    'tools/find',
    'elsewhere',
  ]) {
    t.notMatch(text, secret, `no ${secret.slice(0, 12)}…`)
  }
  // Our own families (Node's default metrics, prefixed tokengate_process_/nodejs_, label GC kinds and versions).
  const ours = text
    .split('\n')
    .filter((l) => l.startsWith('tokengate_') && !/^tokengate_(process|nodejs)_/.test(l))
  const labelValues = new Set<string>()
  for (const line of ours)
    for (const m of line.matchAll(/(\w+)="([^"]*)"/g)) if (m[1] !== 'le') labelValues.add(`${m[1]}=${m[2]}`)
  const allowed =
    /^(mount=(none|\/api|\/down)|method=(read|write|other)|outcome=(allowed|denied|upstream_error|error)|reason=[a-z_]+|status_class=[1-5]xx|cache=(hit|miss|none)|direction=(in|out)|kind=(connection|command)|state=(active|idle)|result=(ok|invalid)|version=\d+\.\d+\.\d+)$/
  for (const v of labelValues) t.match(v, allowed, v)
})

t.test('promtool accepts the exposition', async (t) => {
  const text = await scrape()
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    p.stdout.on('data', (c) => (output += c))
    p.stderr.on('data', (c) => (output += c))
    p.on('close', (code) => resolve({ code, output }))
    p.stdin.end(text)
  })
  t.equal(code, 0, output)
})

t.test('/healthz answers while the process lives', async (t) => {
  const res = await send(ops, { path: '/healthz' })
  t.equal(res.status, 200)
  t.same(res.json(), { status: 'ok' })
})

async function readyz(g: GateHandle = gate) {
  const res = await send(`http://127.0.0.1:${g.app.opsAddress?.port}`, { path: '/readyz' })
  return { status: res.status, body: res.json() as { status: string; checks: Record<string, string> } }
}

t.test('/readyz names an upstream that is down', async (t) => {
  const r = await readyz()
  t.equal(r.status, 503)
  t.equal(r.body.checks['mount /api'], 'ok')
  t.equal(r.body.checks['mount /down'], 'ECONNREFUSED')
  t.equal(r.body.checks.redis, 'ok')
})

t.test('/readyz flips to 503 when Redis stops and back when it returns', async (t) => {
  const g = await startGate({ redisUrl: redis.url, upstream: `${upstream.url}/dicom-web` })
  t.teardown(g.stop)
  t.equal((await readyz(g)).status, 200)
  await redis.kill()
  const down = await readyz(g)
  t.equal(down.status, 503)
  t.equal(down.body.checks['mount /api'], 'ok')
  t.not(down.body.checks.redis, 'ok', `redis: ${down.body.checks.redis}`)
  await redis.restart()
  const up = await probeUntil(
    () => readyz(g),
    (r) => r.status === 200,
    { intervalMs: 50 },
  )
  t.equal(up.status, 200, 'ready again without a restart')
  const text = await send(`http://127.0.0.1:${g.app.opsAddress?.port}`, { path: '/metrics' })
  t.ok(value(text.text, 'tokengate_redis_reconnects_total') >= 1, 'the reconnect is counted')
  const errors =
    value(text.text, 'tokengate_redis_errors_total{kind="connection"}') +
    value(text.text, 'tokengate_redis_errors_total{kind="command"}')
  t.ok(errors >= 1, 'and the failed ping or the broken connection')
})

t.test('anything else on the ops listener is 404 or 405', async (t) => {
  t.equal((await send(ops, { path: '/' })).status, 404)
  t.equal((await send(ops, { path: '/metrics', method: 'POST', body: '' })).status, 405)
})
