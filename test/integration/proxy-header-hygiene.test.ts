// Header hygiene (issue 11, "What was seen" 8): what a client sends in headers never poses as
// identity, never names the host the upstream builds URLs from, and never carries the client's own
// secret upstream; `100 Continue` comes only after the request is authorised; every answer to a
// link path keeps the secret out of Referer headers and caches.
import { connect } from 'node:net'
import t from 'tap'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read,write',
  expiresIn: '1h',
})
const anyPath = { rules: [{ methods: '*', path: '/**', action: 'read' }] }

const gate = await startGate({ redisUrl: redis.url, upstream: upstream.url, mount: anyPath })
t.teardown(gate.stop)

function lastSeen() {
  const seen = upstream.requests.at(-1)
  if (!seen) throw new Error('the upstream saw nothing')
  return seen.headers
}

t.test('identity headers spelled with underscores never reach the upstream', async (t) => {
  const res = await send(gate.url, {
    path: '/api/studies',
    headers: [
      ['authorization', `Bearer ${token}`],
      ['X_Tokengate_User', 'mallory'],
      ['X_Tokengate_Scope', 'album:B'],
      ['X_Tokengate_Token_Id', 'forged'],
      ['x-tokengate_user', 'mallory'],
    ],
  })
  t.equal(res.status, 200)
  const names = Object.keys(lastSeen())
  t.notOk(JSON.stringify(lastSeen()).includes('mallory'), 'no client-made user reaches the upstream')
  t.notOk(JSON.stringify(lastSeen()).includes('forged'), 'no client-made token id reaches the upstream')
  t.notOk(
    names.some((n) => n.includes('_')),
    'no underscore spelling of a stripped name is forwarded',
  )
  t.equal(lastSeen()['x-tokengate-scope'], 'album:A', 'the scope is tokengate’s')
})

t.test('the default strip list removes headers upstreams take for identity or routing', async (t) => {
  const sent = [
    'X-Original-URL',
    'X-Rewrite-URL',
    'X-Original-URI',
    'X-Real-IP',
    'Remote-User',
    'X-Remote-User',
    'X-Forwarded-User',
    'X_Remote_User',
  ]
  const res = await send(gate.url, {
    path: '/api/studies',
    headers: [['authorization', `Bearer ${token}`], ...sent.map((n): [string, string] => [n, '/admin'])],
  })
  t.equal(res.status, 200)
  const seen = lastSeen()
  for (const name of sent) t.equal(seen[name.toLowerCase()], undefined, `${name} is stripped`)
})

t.test('a header value carrying the request’s own secret is removed', async (t) => {
  const res = await send(gate.url, {
    path: `/api/link/${token}/studies`,
    headers: {
      referer: `https://viewer.example/api/link/${token}/viewer`,
      cookie: `session=1; tg=${encodeURIComponent(token)}`,
      'x-note': 'kept',
    },
  })
  t.equal(res.status, 200)
  const seen = lastSeen()
  t.equal(seen.referer, undefined, 'Referer with the link URL is dropped')
  t.equal(seen.cookie, undefined, 'Cookie with the secret is dropped')
  t.equal(seen['x-note'], 'kept', 'other headers pass')
  t.notOk(JSON.stringify(seen).includes(token), 'the secret appears in no upstream header')
})

t.test('Forwarded and X-Forwarded-Host never carry the client’s Host', async (t) => {
  const res = await send(gate.url, {
    path: '/api/studies',
    headers: { ...bearer(token), host: 'h/studies/1.2.3/x', 'x-forwarded-host': 'evil.example' },
  })
  t.equal(res.status, 200)
  const seen = lastSeen()
  t.notMatch(String(seen.forwarded), /studies|evil/, `Forwarded: ${seen.forwarded}`)
  t.match(String(seen.forwarded), `host="127.0.0.1:${gate.port}"`, 'tokengate’s own address')
  t.notMatch(String(seen['x-forwarded-host']), /studies|evil/)
  t.equal(seen['x-forwarded-host'], `127.0.0.1:${gate.port}`, 'tokengate’s own address')
})

t.test('X-Forwarded-For from a client that is no trusted proxy is not believed', async (t) => {
  const res = await send(gate.url, {
    path: '/api/studies',
    headers: { ...bearer(token), 'x-forwarded-for': '10.9.9.9', 'x-forwarded-proto': 'https' },
  })
  t.equal(res.status, 200)
  const seen = lastSeen()
  t.equal(seen['x-forwarded-for'], '127.0.0.1')
  t.equal(seen['x-forwarded-proto'], 'http')
  t.match(String(seen.forwarded), /^for=127\.0\.0\.1;/)
})

t.test('X-Forwarded-* from a trusted proxy are kept and appended to', async (t) => {
  const trusting = await startGate({
    redisUrl: redis.url,
    upstream: upstream.url,
    mount: anyPath,
    config: { trustedProxies: ['127.0.0.0/8'] },
  })
  t.teardown(trusting.stop)
  const res = await send(trusting.url, {
    path: '/api/studies',
    headers: { ...bearer(token), 'x-forwarded-for': '10.9.9.9', 'x-forwarded-proto': 'https' },
  })
  t.equal(res.status, 200)
  const seen = lastSeen()
  t.equal(seen['x-forwarded-for'], '10.9.9.9,127.0.0.1')
  t.equal(seen['x-forwarded-proto'], 'https,http')
  t.match(String(seen.forwarded), /^for=10\.9\.9\.9;/, 'the client behind the proxy')
})

t.test('with publicUrl, Forwarded names the public host', async (t) => {
  const pub = await startGate({
    redisUrl: redis.url,
    upstream: upstream.url,
    mount: anyPath,
    config: { publicUrl: 'https://pacs.example.org' },
  })
  t.teardown(pub.stop)
  const res = await send(pub.url, {
    path: '/api/studies',
    headers: { ...bearer(token), host: 'evil.example' },
  })
  t.equal(res.status, 200)
  const seen = lastSeen()
  t.match(String(seen.forwarded), /host=pacs\.example\.org;proto=https$/)
  t.equal(seen['x-forwarded-host'], 'pacs.example.org')
})

/** Send headers with `Expect: 100-continue` and no body; resolve with the first bytes answered. */
function firstAnswer(headers: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(gate.port, '127.0.0.1')
    socket.on('error', reject)
    socket.once('data', (chunk: Buffer) => {
      resolve(chunk.toString('latin1'))
      socket.destroy()
    })
    socket.write(
      `POST /api/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Expect: 100-continue\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n`,
    )
  })
}

t.test('100 Continue is sent only after the request is authorised', async (t) => {
  const refused = await firstAnswer('Authorization: Bearer tg_not-a-valid-token-at-all-0123456789ab\r\n')
  t.match(refused, /^HTTP\/1\.1 401 /, 'an unauthorised upload is refused before its body is asked for')
  const none = await firstAnswer('')
  t.match(none, /^HTTP\/1\.1 401 /)
  const allowed = await firstAnswer(`Authorization: Bearer ${token}\r\n`)
  t.match(allowed, /^HTTP\/1\.1 100 Continue/, 'an authorised one is asked for its body')
})

t.test('an authorised upload with Expect: 100-continue goes through whole', async (t) => {
  const res = await send(gate.url, {
    method: 'POST',
    path: '/api/studies',
    headers: { ...bearer(token), expect: '100-continue', 'content-type': 'application/octet-stream' },
    body: 'x'.repeat(1000),
  })
  t.equal(res.status, 200)
  t.equal(upstream.requests.at(-1)?.bodyBytes, 1000)
  t.equal(lastSeen().expect, undefined, 'the upstream is not asked to continue again')
})

t.test('answers refused at the routing step on a link path carry no-referrer and no-store', async (t) => {
  const strict = await startGate({ redisUrl: redis.url, upstream: upstream.url })
  t.teardown(strict.stop)
  const res = await send(strict.url, { path: `/api/link/${token}/no-such-resource` })
  t.equal(res.status, 404)
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  t.equal(res.headers['cache-control'], 'private, no-store')
  const malformed = await send(strict.url, { path: `/api/link/${token}` })
  t.equal(malformed.headers['referrer-policy'], 'no-referrer', String(malformed.status))
})
