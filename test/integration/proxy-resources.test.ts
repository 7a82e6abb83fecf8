// Permission profiles for any API (issue 13, point 3), Thinger.io's example in its own words: a
// recording upstream on loopback behind the /iot mount with the device / bucket / department rules
// of the issue; `api` tokens whose grants name a resource type, one resource or all, and actions.
// A request passes only when a rule matches it (else 404, before any token lookup) and a grant
// covers its type, the id it captured and its action (else 403). Grant changes on a live token
// reach two running gates, whose caches would otherwise hold the record for ten minutes.
import t from 'tap'
import { GrantOps } from '../../src/admin/grants-ops.js'
import { hashSecret } from '../../src/credential/secret.js'
import { publishInvalidation } from '../../src/token/invalidation.js'
import { makeKeys } from '../../src/token/keys.js'
import type { TokenHash } from '../../src/token/record.js'
import { accessLog, admin, type GateHandle, gateConfig, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { commandCalls, startRedis } from '../helpers/redis.js'
import { iotMount } from '../helpers/resources.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { probeUntil } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const keys = makeKeys('tg:')
const tokens = admin(redis.client)
const grantOps = new GrantOps(redis.client, keys, {})

/** The config, verbatim, beside a DICOMweb mount. */
const IOT = iotMount(`${upstream.url}/v1`)

async function gate(): Promise<GateHandle> {
  return startGate({
    redisUrl: redis.url,
    upstream: `${upstream.url}/dicom-web`,
    config: {
      mounts: [{ path: '/api', upstream: `${upstream.url}/dicom-web` }, IOT],
      cache: { ttl: '10m', negativeTtl: '10m' },
    },
  })
}

const g = await gate()
t.teardown(g.stop)

async function call(token: string, path: string, method = 'GET', via: GateHandle = g) {
  const before = upstream.requests.length
  const res = await send(via.url, {
    method,
    path,
    headers: bearer(token),
    body: method === 'POST' ? '{}' : undefined,
  })
  return { status: res.status, body: res.text, reached: upstream.requests.slice(before) }
}

const calls = (command: string) => commandCalls(redis.client, command)

const thinger = await tokens.create({
  kind: 'api',
  grants: ['device:device42:AccessDeviceResources,GetDeviceStats', 'bucket:*:ReadBucket'],
  expiresIn: '1h',
  description: 'Thinger profile',
})

t.test('a token for device42 reaches device42 and every bucket it may read, nothing else', async (t) => {
  const allowed: [string, string, string][] = [
    ['GET', '/iot/devices/device42/resources/x', '/v1/devices/device42/resources/x'],
    ['GET', '/iot/devices/device42/resources/led/state', '/v1/devices/device42/resources/led/state'],
    ['GET', '/iot/devices/device42/stats', '/v1/devices/device42/stats'],
    ['GET', '/iot/buckets/b1/data', '/v1/buckets/b1/data'],
    ['GET', '/iot/buckets/other/data?items=10', '/v1/buckets/other/data?items=10'],
  ]
  for (const [method, path, upstreamUrl] of allowed) {
    const res = await call(thinger.token, path, method)
    t.equal(res.status, 200, `${method} ${path}: allowed`)
    t.equal(res.reached.length, 1, `${method} ${path}: forwarded once`)
    t.equal(res.reached[0]?.url, upstreamUrl, `${method} ${path}: forwarded as ${upstreamUrl}`)
    t.notOk(res.reached[0]?.headers.authorization, 'the client credential is not forwarded')
    t.equal(res.reached[0]?.headers['x-tokengate-token-id'], thinger.id)
    t.equal(res.reached[0]?.headers['x-tokengate-scope'], 'api')
  }
  const refused: [string, string, number, string][] = [
    ['GET', '/iot/devices/device99/resources/x', 403, 'another device'],
    ['GET', '/iot/devices/device99/stats', 403, 'another device'],
    ['GET', '/iot/devices/device420/stats', 403, 'an id that only starts like the granted one'],
    ['POST', '/iot/buckets/b1/data', 403, 'WriteBucket is not granted'],
    ['DELETE', '/iot/devices/device42', 403, 'DeleteDevice is not granted'],
    ['GET', '/iot/devices', 403, 'ListDevices names no id: only a grant on every device covers it'],
    ['GET', '/iot/departments/cardiology/x', 403, 'no department grant'],
    ['GET', '/iot/unknown', 404, 'no rule'],
    ['GET', '/iot/devices/device42/reboot', 404, 'no rule'],
    ['PUT', '/iot/buckets/b1/data', 404, 'no rule for the method'],
  ]
  for (const [method, path, status, why] of refused) {
    const res = await call(thinger.token, path, method)
    t.equal(res.status, status, `${method} ${path}: ${status} (${why})`)
    t.equal(res.reached.length, 0, `${method} ${path}: the upstream never sees it`)
    if (status === 403) t.match(JSON.parse(res.body), { error: 'insufficient_scope' })
    else t.match(JSON.parse(res.body), { error: 'not_found' })
  }
  const reasons = accessLog(g)
    .filter((l) => l.status === 403)
    .map((l) => l.reason)
  t.ok(reasons.length > 0 && reasons.every((r) => r === 'no_grant'), 'logged as no_grant')
})

t.test('a resource mount passes what the API answers: no zip rule, no DICOM JSON rewriting', async (t) => {
  const before = upstream.requests.length
  const res = await send(g.url, {
    path: '/iot/buckets/b1/data?accept=application/zip',
    headers: { ...bearer(thinger.token), accept: 'application/zip', 'accept-encoding': 'gzip' },
  })
  t.equal(res.status, 200, 'not 406: zip is a DICOMweb matter')
  t.equal(upstream.requests[before]?.url, '/v1/buckets/b1/data?accept=application/zip')
  t.equal(upstream.requests[before]?.headers['accept-encoding'], 'gzip', 'compression left to the API')
})

t.test('the /link/<token>/ credential works on a resource mount and never reaches the API', async (t) => {
  const before = upstream.requests.length
  const res = await send(g.url, { path: `/iot/link/${thinger.token}/devices/device42/stats` })
  t.equal(res.status, 200)
  t.equal(upstream.requests[before]?.url, '/v1/devices/device42/stats')
  const refused = await send(g.url, { path: `/iot/link/${thinger.token}/devices/device99/stats` })
  t.equal(refused.status, 403)
  t.equal(upstream.requests.length, before + 1)
})

t.test('an id spelled with percent-escapes is the id the upstream reads', async (t) => {
  t.equal(
    (await call(thinger.token, '/iot/devices/device%34%32/stats')).status,
    200,
    'device%34%32 is device42',
  )
  t.equal(
    (await call(thinger.token, '/iot/devices/device%39%39/stats')).status,
    403,
    'device%39%39 is device99',
  )
})

t.test('a path no rule matches is 404 before any token lookup', async (t) => {
  const never = await tokens.create({ kind: 'api', grants: ['admin'], expiresIn: '1h' })
  await redis.client.config('RESETSTAT')
  for (const path of ['/iot/unknown', '/iot/devices/device42/reboot', '/iot/buckets/b1']) {
    t.equal((await call(never.token, path)).status, 404, path)
  }
  t.equal((await calls('hmget')) + (await calls('hgetall')), 0, 'no token was looked up')
})

t.test('the admin grant reaches everything a rule matches, and still nothing else', async (t) => {
  const root = await tokens.create({ kind: 'api', grants: ['admin'], expiresIn: '1h' })
  for (const [method, path] of [
    ['GET', '/iot/devices/device99/resources/x'],
    ['GET', '/iot/devices/device99/stats'],
    ['GET', '/iot/devices'],
    ['DELETE', '/iot/devices/device99'],
    ['GET', '/iot/buckets/b7/data'],
    ['POST', '/iot/buckets/b7/data'],
  ] as const) {
    t.equal((await call(root.token, path, method)).status, 200, `${method} ${path}`)
  }
  t.equal((await call(root.token, '/iot/unknown')).status, 404, 'no rule: 404 even for admin')
  t.equal(
    (await call(root.token, '/iot/departments/cardiology/x')).status,
    403,
    '{attr.department} still needs the token to carry that department',
  )
})

t.test("{attr.department} must equal the token's department attribute", async (t) => {
  const q = await tokens.create({ kind: 'api', grants: ['department:*:read'], expiresIn: '1h' })
  // Attributes are set by the admin layer (`--attr department=cardiology`); here written directly.
  const hash = hashSecret(q.token) as TokenHash
  await redis.client.hset(keys.token(hash), 'attrs', JSON.stringify({ department: 'cardiology' }))
  await publishInvalidation(redis.client, keys, { kind: 'token', hash })
  t.equal((await call(q.token, '/iot/departments/cardiology/reports')).status, 200, 'own department')
  t.equal((await call(q.token, '/iot/departments/cardiology')).status, 200, '** matches nothing too')
  const other = await call(q.token, '/iot/departments/radiology/reports')
  t.equal(other.status, 403, 'another department')
  t.equal(other.reached.length, 0)
  t.equal(accessLog(g).at(-1)?.reason, 'attr_mismatch')
  t.equal((await call(q.token, '/iot/devices/device42/stats')).status, 403, 'no device grant')
})

t.test('album and user tokens are refused on a resource mount; api tokens on a DICOMweb mount', async (t) => {
  // The hole of issue 13: a read token reached every device of a generic API mount.
  const album = await tokens.create({ kind: 'album', album: 'device42', perms: 'read', expiresIn: '1h' })
  const user = await tokens.create({ kind: 'user', user: 'alice', expiresIn: '1h' })
  for (const token of [album.token, user.token]) {
    const res = await call(token, '/iot/devices/device99/stats')
    t.equal(res.status, 403)
    t.equal(res.reached.length, 0)
    t.equal(accessLog(g).at(-1)?.reason, 'wrong_kind')
  }
  const res = await call(thinger.token, '/api/studies')
  t.equal(res.status, 403, 'an api token does not reach the DICOMweb mount')
  t.equal(res.reached.length, 0)
})

t.test('grants changed on a live token reach two running gates without a new secret', async (t) => {
  const one = await gate()
  t.teardown(one.stop)
  const two = await gate()
  t.teardown(two.stop)
  const live = await tokens.create({
    kind: 'api',
    grants: ['device:device42:AccessDeviceResources,GetDeviceStats'],
    expiresIn: '1h',
  })
  const status = async (via: GateHandle, path: string, method = 'GET') =>
    (await call(live.token, path, method, via)).status
  /** Requests until `want`: an invalidation is a message on another socket. */
  const eventually = (via: GateHandle, path: string, want: number) =>
    probeUntil(
      () => status(via, path),
      (got) => got === want,
      { intervalMs: 10 },
    )
  for (const via of [one, two]) {
    t.equal(await status(via, '/iot/devices/device42/stats'), 200)
    t.equal(await status(via, '/iot/devices/device7/stats'), 403)
  }

  const changed = await grantOps.updateGrants(live.id, {
    add: ['device:device7:GetDeviceStats'],
    remove: ['device:device42:GetDeviceStats'],
    description: 'moved to device7',
  })
  t.same(changed.grants, ['device:device42:AccessDeviceResources', 'device:device7:GetDeviceStats'])
  t.equal(changed.description, 'moved to device7')
  for (const via of [one, two]) {
    t.equal(await eventually(via, '/iot/devices/device7/stats', 200), 200, 'new grant: allowed')
    t.equal(await eventually(via, '/iot/devices/device42/stats', 403), 403, 'removed action: refused')
    t.equal(await status(via, '/iot/devices/device42/resources/x'), 200, 'the action kept: allowed')
  }

  await grantOps.updateGrants(live.id, { enabled: false })
  for (const via of [one, two]) t.equal(await eventually(via, '/iot/devices/device7/stats', 401), 401)
  await grantOps.updateGrants(live.id, { enabled: true, add: ['admin'] })
  for (const via of [one, two]) {
    t.equal(await eventually(via, '/iot/devices/device7/stats', 200), 200, 'enabled again')
    t.equal(await eventually(via, '/iot/buckets/b1/data', 200), 200, 'admin now')
  }
  const audit = await tokens.audit.list()
  t.match(audit.at(-1), { op: 'token.update', tokenId: live.id, changed: true })
  t.notMatch(JSON.stringify(audit), live.token, 'the audit trail never holds the secret')
})

t.test('a reload compiles the new resource rules at once', async (t) => {
  const r = await gate()
  t.teardown(r.stop)
  const config = (device: unknown[]) =>
    gateConfig({
      redisUrl: redis.url,
      upstream: `${upstream.url}/dicom-web`,
      config: {
        mounts: [{ ...IOT, resources: { ...IOT.resources, device } }],
        cache: { ttl: '10m', negativeTtl: '10m' },
      },
    })
  t.equal((await call(thinger.token, '/iot/devices/device42/stats', 'GET', r)).status, 200)
  // The stats rule now names the action the token lacks: the same request needs another grant.
  r.app.reload(config([{ methods: ['GET'], path: '/devices/{id}/stats', action: 'ReadTelemetry' }]))
  t.equal((await call(thinger.token, '/iot/devices/device42/stats', 'GET', r)).status, 403)
  t.equal((await call(thinger.token, '/iot/devices/device42/resources/x', 'GET', r)).status, 404, 'rule gone')
  r.app.reload(config(IOT.resources.device))
  t.equal((await call(thinger.token, '/iot/devices/device42/stats', 'GET', r)).status, 200)
})

t.test('a record whose grants cannot be read fails closed', async (t) => {
  const broken = await tokens.create({ kind: 'api', grants: ['admin'], expiresIn: '1h' })
  t.equal((await call(broken.token, '/iot/devices')).status, 200)
  const hash = hashSecret(broken.token) as TokenHash
  await redis.client.hset(keys.token(hash), 'grants', '["admin", "no spaces allowed here"]')
  await publishInvalidation(redis.client, keys, { kind: 'token', hash })
  const status = await probeUntil(
    async () => (await call(broken.token, '/iot/devices')).status,
    (s) => s === 403,
    { intervalMs: 10 },
  )
  t.equal(status, 403)
  t.equal(accessLog(g).at(-1)?.reason, 'bad_grants')
})
