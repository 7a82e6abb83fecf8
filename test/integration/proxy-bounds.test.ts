// Bounds on what one client can make tokengate hold (issue 11, "What was seen" 9): a body on a
// GET/HEAD/DELETE is refused; an upload trickled slower than listen.minUploadRate is cut and its
// upstream request aborted; album ids are checked before any lookup; the membership answers a
// user token can make the cache keep are bounded.
import { connect } from 'node:net'
import t from 'tap'
import { mintSecret } from '../../src/credential/secret.js'
import { cached } from '../../src/token/cache.js'
import { makeKeys } from '../../src/token/keys.js'
import { RedisTokenStore } from '../../src/token/redis-store.js'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/redis-process.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const tokens = admin(redis.client)
const { token } = await tokens.create({ kind: 'album', album: 'A', perms: 'read,write', expiresIn: '1h' })
const anyPath = { rules: [{ methods: '*', path: '/**', action: 'write' }] }
const gate = await startGate({
  redisUrl: redis.url,
  upstream: upstream.url,
  mount: anyPath,
  config: { listen: { host: '127.0.0.1', port: 0, minUploadRate: 1000, uploadRateWindow: '200ms' } },
})
t.teardown(gate.stop)

t.test('a GET, HEAD or DELETE with a body is refused with 400 before the upstream is asked', async (t) => {
  const before = upstream.requests.length
  for (const method of ['GET', 'HEAD', 'DELETE']) {
    const res = await send(gate.url, { method, path: '/api/studies', headers: bearer(token), body: 'x' })
    t.equal(res.status, 400, method)
    if (method !== 'HEAD') t.match(res.json(), { error: 'invalid_request', reason: /must not carry a body/ })
  }
  t.equal(upstream.requests.length, before, 'the upstream saw none of them')
  t.equal(accessLog(gate).at(-1)?.reason, 'body_not_allowed')
})

t.test(
  'a trickled GET with a huge Content-Length is refused at once and its connection closed',
  async (t) => {
    const before = upstream.requests.length
    const socket = connect(gate.port, '127.0.0.1')
    t.teardown(() => socket.destroy())
    let answer = ''
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1')
    })
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    socket.write(
      `GET /api/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 1000000000\r\n\r\na`,
    )
    await closed
    t.match(answer, /^HTTP\/1\.1 400 /)
    t.match(answer, /connection: close/i)
    t.equal(upstream.requests.length, before, 'no upstream socket was taken')
  },
)

t.test('an upload slower than listen.minUploadRate is cut and its upstream request aborted', async (t) => {
  const before = upstream.requests.length
  const socket = connect(gate.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.on('error', () => {})
  socket.write(
    `POST /api/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000000\r\n\r\n`,
  )
  // A byte every 50 ms: 20 B/s, far below 1000 B/s.
  const trickle = setInterval(() => socket.writable && socket.write('a'), 50)
  t.teardown(() => clearInterval(trickle))
  await waitFor('the upload to reach the upstream', async () => upstream.requests.length > before, 5000)
  await closed
  clearInterval(trickle)
  await waitFor('the upstream request to be aborted', async () => upstream.requests.at(-1)?.aborted, 5000)
  t.equal(upstream.requests.at(-1)?.bodyComplete, false)
  await waitFor(
    'the access log to say why',
    async () => accessLog(gate).at(-1)?.reason === 'upload_too_slow',
    5000,
  )
})

t.test('an upload at a fair rate goes through whole', async (t) => {
  const body = Buffer.alloc(256 * 1024, 1)
  const res = await send(gate.url, { method: 'POST', path: '/api/studies', headers: bearer(token), body })
  t.equal(res.status, 200)
  t.equal(upstream.requests.at(-1)?.bodyBytes, body.length)
})

t.test('a malformed album id is refused with 400 before any lookup', async (t) => {
  const user = await tokens.create({ kind: 'user', user: 'u1', expiresIn: '1h' })
  const before = upstream.requests.length
  // Control bytes are refused one step earlier, by the canonical query reader (ambiguous_request).
  const cases: [string, string][] = [
    ['x'.repeat(12 * 1024), 'bad_id'],
    ['a%0Ab', 'control_char'],
    ['a%20b', 'bad_id'],
    ['-a', 'bad_id'],
    ['a%2Fb', 'bad_id'],
    ['%00', 'control_char'],
  ]
  for (const [album, reason] of cases) {
    const res = await send(gate.url, { path: `/api/studies?album=${album}`, headers: bearer(user.token) })
    t.equal(res.status, 400, album.slice(0, 20))
    t.equal(accessLog(gate).at(-1)?.reason, reason)
  }
  const unknown = await send(gate.url, {
    path: `/api/studies?album=${'x'.repeat(12 * 1024)}`,
    headers: bearer(mintSecret('tg_')),
  })
  t.equal(unknown.status, 400, 'refused before the token is looked up')
  t.equal(upstream.requests.length, before)
})

t.test('the membership answers a user token makes the cache keep are bounded in count', async (t) => {
  const keys = makeKeys('tg:')
  const store = new RedisTokenStore(redis.client, keys)
  const cache = cached(store, { max: 100, ttl: 60_000, negativeTtl: 1000 })
  for (let i = 0; i < 1000; i++) await cache.isAlbumMember('u1', `album-${i}`)
  t.ok(cache.membershipSize() <= 100, `kept ${cache.membershipSize()} answers for 1000 albums asked`)

  await redis.client.sadd(keys.userAlbums('u2'), 'B')
  t.equal(await cache.isAlbumMember('u2', 'B'), true)
  await redis.client.srem(keys.userAlbums('u2'), 'B')
  t.equal(await cache.isAlbumMember('u2', 'B'), true, 'answered from the cache')
  cache.evict({ kind: 'user', user: 'u2' })
  t.equal(await cache.isAlbumMember('u2', 'B'), false, 'a user invalidation drops the user’s answers')
  await redis.client.sadd(keys.userAlbums('u2'), 'B')
  cache.evict({ kind: 'album', album: 'B' })
  t.equal(await cache.isAlbumMember('u2', 'B'), true, 'an album invalidation drops the album’s answers')
})
