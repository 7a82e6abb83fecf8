// CORS through the whole gate, with a recording upstream: a preflight is answered by tokengate
// without a credential and never reaches the upstream; a listed origin gets the CORS headers on
// forwarded answers (over an upstream's own) and on every error answer (400/401/403/404), so a
// viewer on another origin can read them; an origin not listed gets none; a mount without `cors`
// is unchanged.
import { createServer } from 'node:http'
import t from 'tap'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { listenLoopback, startRecordingUpstream } from '../helpers/upstream.js'

const VIEWER = 'http://viewer.test:3000'
const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
// An upstream that answers with CORS headers of its own (as some PACS do), which must not win.
const permissive = await listenLoopback(
  createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/dicom+json',
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'X-Secret-Internal',
    })
    res.end('[]')
  }),
)
t.teardown(permissive.stop)

const gate = await startGate({
  redisUrl: redis.url,
  upstream: upstream.url,
  config: {
    mounts: [
      { path: '/api', upstream: upstream.url, cors: { origins: [VIEWER], maxAge: 300 } },
      { path: '/pacs', upstream: permissive.url, cors: { origins: [VIEWER] } },
      { path: '/plain', upstream: upstream.url },
    ],
  },
})
t.teardown(gate.stop)
const tokens = admin(redis.client)
const reader = await tokens.create({ kind: 'album', album: 'a1', perms: 'read', expiresIn: '1h' })

const EXPOSED = 'Content-Type, Content-Length, Content-Location, Warning, X-Request-Id'

t.test('a preflight is answered without a token and never forwarded', async (t) => {
  const before = upstream.requests.length
  const res = await send(gate.url, {
    method: 'OPTIONS',
    path: '/api/studies?PatientID=1',
    headers: {
      origin: VIEWER,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization,accept',
    },
  })
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-origin'], VIEWER)
  t.match(res.headers['access-control-allow-methods'], /GET/)
  t.equal(res.headers['access-control-allow-headers'], 'Authorization, Content-Type, Accept')
  t.equal(res.headers['access-control-max-age'], '300')
  t.equal(res.headers.vary, 'Origin')
  t.ok(res.headers['x-request-id'], 'the preflight has its request id')
  t.equal(upstream.requests.length, before, 'the upstream saw nothing')
  const line = accessLog(gate).find((l) => l.method === 'OPTIONS' && l.status === 204)
  t.ok(line, 'the preflight has its access-log line')
})

t.test('a link-token preflight is answered too, and the secret stays out of the log', async (t) => {
  const res = await send(gate.url, {
    method: 'OPTIONS',
    path: `/api/link/${reader.token}/studies`,
    headers: { origin: VIEWER, 'access-control-request-method': 'GET' },
  })
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-origin'], VIEWER)
  t.notOk(
    gate.logs.some((l) => l.includes(reader.token)),
    'no secret in any log line',
  )
})

t.test('a forwarded answer carries the CORS headers for a listed origin', async (t) => {
  const res = await send(gate.url, {
    path: '/api/studies',
    headers: { origin: VIEWER, ...bearer(reader.token) },
  })
  t.equal(res.status, 200)
  t.equal(res.headers['access-control-allow-origin'], VIEWER)
  t.equal(res.headers['access-control-expose-headers'], EXPOSED)
  t.equal(upstream.requests.at(-1)?.headers.origin, VIEWER, 'the request itself is forwarded as usual')
})

t.test("tokengate's CORS headers replace an upstream's own", async (t) => {
  const res = await send(gate.url, {
    path: '/pacs/studies',
    headers: { origin: VIEWER, ...bearer(reader.token) },
  })
  t.equal(res.status, 200)
  t.same(res.headers['access-control-allow-origin'], VIEWER, 'one value: the listed origin, not "*"')
  t.same(res.headers['access-control-expose-headers'], EXPOSED)
})

t.test('error answers carry the CORS headers, so the viewer can read them', async (t) => {
  const cases: [string, Record<string, string>, number][] = [
    ['/api/studies', {}, 401],
    ['/api/studies', bearer('tg_not-a-real-token'), 401],
    ['/api/studies', { authorization: 'Bearer' }, 400],
    ['/api/studies?album=other', bearer(reader.token), 404],
    ['/api/nothing-here', bearer(reader.token), 404],
  ]
  const before = upstream.requests.length
  for (const [path, headers, status] of cases) {
    const res = await send(gate.url, { path, headers: { origin: VIEWER, ...headers } })
    t.equal(res.status, status, `${path} → ${status}`)
    t.equal(res.headers['access-control-allow-origin'], VIEWER, `${status} has Allow-Origin`)
    t.equal(res.headers['access-control-expose-headers'], EXPOSED)
    t.equal(res.headers.vary, 'Origin')
  }
  const forbidden = await send(gate.url, {
    method: 'POST',
    path: '/api/studies',
    headers: { origin: VIEWER, ...bearer(reader.token), 'content-type': 'application/dicom' },
    body: 'x',
  })
  t.equal(forbidden.status, 403)
  t.equal(forbidden.headers['access-control-allow-origin'], VIEWER, '403 has Allow-Origin')
  t.equal(upstream.requests.length, before, 'none of them was forwarded')
})

t.test('an origin not listed gets no CORS grant, on a preflight or a request', async (t) => {
  const pre = await send(gate.url, {
    method: 'OPTIONS',
    path: '/api/studies',
    headers: { origin: 'http://evil.test', 'access-control-request-method': 'GET' },
  })
  t.equal(pre.status, 204)
  t.equal(pre.headers['access-control-allow-origin'], undefined)
  t.equal(pre.headers['access-control-allow-methods'], undefined)
  const res = await send(gate.url, {
    path: '/api/studies',
    headers: { origin: 'http://evil.test', ...bearer(reader.token) },
  })
  t.equal(res.status, 200)
  t.equal(res.headers['access-control-allow-origin'], undefined)
  t.equal(res.headers.vary, 'Origin', 'caches still key on Origin')
})

t.test('a mount without cors is unchanged: a preflight is an unknown route', async (t) => {
  const before = upstream.requests.length
  const pre = await send(gate.url, {
    method: 'OPTIONS',
    path: '/plain/studies',
    headers: { origin: VIEWER, 'access-control-request-method': 'GET' },
  })
  t.equal(pre.status, 404)
  t.equal(pre.headers['access-control-allow-origin'], undefined)
  const res = await send(gate.url, {
    path: '/plain/studies',
    headers: { origin: VIEWER, ...bearer(reader.token) },
  })
  t.equal(res.status, 200)
  t.equal(res.headers['access-control-allow-origin'], undefined)
  t.equal(upstream.requests.length, before + 1)
})
