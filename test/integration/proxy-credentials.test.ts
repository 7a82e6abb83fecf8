// Bearer / Basic / link end to end through a real tokengate, real Redis and a recording upstream:
// what the client gets, and exactly what reaches the upstream.
import t from 'tap'
import { hashSecret } from '../../src/credential/secret.js'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { basic, bearer, send } from '../helpers/http.js'
import { commandCalls, startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const tokens = admin(redis.client)
const album = await tokens.create({
  kind: 'album',
  album: 'A1',
  user: 'owner',
  perms: 'read',
  expiresIn: '1h',
})
const writer = await tokens.create({ kind: 'album', album: 'A1', perms: 'read,write', expiresIn: '1h' })

function last() {
  const r = upstream.requests.at(-1)
  if (!r) throw new Error('upstream saw nothing')
  return r
}

t.test('the forwarder', async (t) => {
  const gate = await startGate({
    redisUrl: redis.url,
    upstream: `${upstream.url}/dicom-web`,
    wado: `${upstream.url}/wado`,
  })
  t.teardown(gate.stop)

  t.test(
    'each credential form reaches the upstream as the same album-scoped request, without the secret',
    async (t) => {
      const forms: [string, string, Record<string, string>][] = [
        ['Bearer', '/api/studies?limit=5', bearer(album.token)],
        ['bearer (lower-case scheme)', '/api/studies?limit=5', { authorization: `bearer ${album.token}` }],
        ['Basic, user name ignored', '/api/studies?limit=5', basic(album.token, 'anything-at-all')],
        ['link', `/api/link/${album.token}/studies?limit=5`, {}],
      ]
      for (const [name, path, headers] of forms) {
        const before = upstream.requests.length
        const res = await send(gate.url, { path, headers })
        t.equal(res.status, 200, `${name}: 200`)
        t.equal(upstream.requests.length, before + 1, `${name}: one upstream request`)
        const seen = last()
        t.equal(seen.url, '/dicom-web/studies?limit=5&album=A1', `${name}: path and scope`)
        t.equal(seen.headers.authorization, undefined, `${name}: no Authorization upstream`)
        t.notMatch(JSON.stringify(seen), album.token, `${name}: the secret never reaches the upstream`)
        t.equal(seen.headers['x-tokengate-token-id'], album.id, `${name}: token id header`)
        t.equal(seen.headers['x-tokengate-user'], 'owner', `${name}: user header`)
        t.equal(seen.headers['x-tokengate-scope'], 'album:A1', `${name}: scope header`)
      }
    },
  )

  t.test('link responses carry no-referrer and no-store, since the secret is in the URL', async (t) => {
    const res = await send(gate.url, { path: `/api/link/${album.token}/studies` })
    t.equal(res.status, 200)
    t.equal(res.headers['referrer-policy'], 'no-referrer')
    t.equal(res.headers['cache-control'], 'private, no-store')
    const denied = await send(gate.url, { path: `/api/link/${album.token}x/studies` })
    t.equal(denied.status, 401)
    t.equal(denied.headers['referrer-policy'], 'no-referrer', 'error answers to link requests too')
  })

  t.test('the path and query after /link/<token>/ reach the upstream in canonical spelling', async (t) => {
    const tail = '/studies/1.2.3/series?includefield=0020000E&StudyDate=2020%2D01%2D01&x=%7Ba%7D&y=a+b'
    const res = await send(gate.url, { path: `/api/link/${album.token}${tail}` })
    t.equal(res.status, 200)
    t.equal(
      last().url,
      '/dicom-web/studies/1.2.3/series?includefield=0020000E&StudyDate=2020-01-01&x=%7Ba%7D&y=a+b&album=A1',
    )
  })

  t.test('spoofed identity headers and Forwarded from the client never reach the upstream', async (t) => {
    const res = await send(gate.url, {
      path: '/api/studies',
      headers: {
        ...bearer(album.token),
        'X-Tokengate-User': 'admin',
        'x-tokengate-scope': 'user',
        'X-Tokengate-Token-Id': 'tok_forged',
        forwarded: 'host=evil.example',
      },
    })
    t.equal(res.status, 200)
    const seen = last()
    t.equal(seen.headers['x-tokengate-user'], 'owner')
    t.equal(seen.headers['x-tokengate-scope'], 'album:A1')
    t.equal(seen.headers['x-tokengate-token-id'], album.id)
    t.notMatch(String(seen.headers.forwarded), /evil/)
    t.match(String(seen.headers.forwarded), /host="127\.0\.0\.1:\d+";proto=http/)
  })

  t.test('refusals: status, body and challenge for each malformed or missing credential', async (t) => {
    const cases: [string, string, [string, string][], number, string][] = [
      ['no credential', '/api/studies', [], 401, 'unauthorized'],
      ['unknown scheme', '/api/studies', [['authorization', `Token ${album.token}`]], 400, 'invalid_request'],
      ['empty bearer', '/api/studies', [['authorization', 'Bearer ']], 400, 'invalid_request'],
      ['Basic that is not base64', '/api/studies', [['authorization', 'Basic !!!']], 400, 'invalid_request'],
      [
        'Basic with an empty password',
        '/api/studies',
        [['authorization', `Basic ${Buffer.from('user:').toString('base64')}`]],
        400,
        'invalid_request',
      ],
      [
        'Bearer and a different link token',
        `/api/link/${writer.token}/studies`,
        [['authorization', `Bearer ${album.token}`]],
        400,
        'invalid_request',
      ],
      [
        'two different Authorization headers',
        '/api/studies',
        [
          ['authorization', `Bearer ${album.token}`],
          ['authorization', `Bearer ${writer.token}`],
        ],
        400,
        'invalid_request',
      ],
      ['a garbage token', '/api/studies', [['authorization', 'Bearer tg_garbage']], 401, 'invalid_token'],
    ]
    for (const [name, path, headers, status, error] of cases) {
      const before = upstream.requests.length
      const res = await send(gate.url, { path, headers })
      t.equal(res.status, status, `${name}: status`)
      t.equal((res.json() as { error: string }).error, error, `${name}: error`)
      t.equal(upstream.requests.length, before, `${name}: nothing reached the upstream`)
      t.notMatch(res.text, album.token, `${name}: the body never echoes a secret`)
      if (status === 401)
        t.match(res.headers['www-authenticate'], /^Bearer realm="tokengate"/, `${name}: challenge`)
    }
  })

  t.test('the same secret sent as Bearer and as link is one credential, not two', async (t) => {
    const res = await send(gate.url, {
      path: `/api/link/${album.token}/studies`,
      headers: bearer(album.token),
    })
    t.equal(res.status, 200)
  })

  t.test('a path that climbs out of the mount after decoding is refused before any lookup', async (t) => {
    for (const path of [
      `/api/link/${album.token}/../../tools/find`,
      `/api/link/${album.token}/studies/%2e%2e/%2E%2E/system`,
      '/api/studies/..%2f..%2fsystem',
    ]) {
      const before = upstream.requests.length
      const res = await send(gate.url, { path, headers: bearer(album.token) })
      t.equal(res.status, 400, path.replace(album.token, '<t>'))
      t.equal(upstream.requests.length, before)
    }
  })

  t.test(
    'an unknown path under the mount is 404 before any token lookup; outside any mount too',
    async (t) => {
      await redis.client.config('RESETSTAT')
      for (const path of ['/api/tools/find', '/api/system', '/other/studies']) {
        const res = await send(gate.url, { path, headers: bearer('tg_not_even_checked') })
        t.equal(res.status, 404, path)
        t.equal((res.json() as { error: string }).error, 'not_found')
      }
      t.equal(await commandCalls(redis.client, 'hmget', 'hgetall'), 0, 'no Redis lookup was made')
    },
  )

  t.test('a mistyped minted secret is refused with no Redis lookup at all', async (t) => {
    await redis.client.config('RESETSTAT')
    const mistyped = `${album.token.slice(0, 10)}${album.token[10] === 'A' ? 'B' : 'A'}${album.token.slice(11)}`
    const res = await send(gate.url, { path: '/api/studies', headers: bearer(mistyped) })
    t.equal(res.status, 401)
    t.equal(await commandCalls(redis.client, 'hmget', 'hgetall'), 0, 'no Redis lookup was made')
  })

  t.test(
    'unknown, expired, disabled and revoked tokens get the same 401 but distinct log reasons',
    async (t) => {
      let clock = Date.now()
      const timed = await startGate({
        redisUrl: redis.url,
        upstream: `${upstream.url}/dicom-web`,
        now: () => clock,
      })
      t.teardown(timed.stop)
      const expiring = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '10m' })
      const disabled = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '1h' })
      const revoked = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '1h' })
      // Warm the cache first: expiry must be checked on every request, not only on a Redis read.
      t.equal((await send(timed.url, { path: '/api/studies', headers: bearer(expiring.token) })).status, 200)
      await tokens.disable(disabled.id)
      await tokens.revoke(revoked.id)
      clock += 11 * 60_000
      const unknown = `tg_${'A'.repeat(32)}`
      const bodies = new Set<string>()
      for (const token of [expiring.token, disabled.token, revoked.token]) {
        const res = await send(timed.url, { path: '/api/studies', headers: bearer(token) })
        t.equal(res.status, 401)
        bodies.add(res.text)
      }
      const legacyUnknown = await send(timed.url, {
        path: '/api/studies',
        headers: bearer('legacy-token-never-issued'),
      })
      t.equal(legacyUnknown.status, 401)
      bodies.add(legacyUnknown.text)
      t.equal(bodies.size, 1, 'one indistinguishable body for every invalid case')
      t.ok(unknown)
      const reasons = accessLog(timed)
        .filter((l) => l.status === 401)
        .map((l) => l.reason)
      t.same(reasons, ['expired', 'disabled', 'revoked', 'unknown'])
    },
  )

  t.test('the secret of a stored token appears in Redis only as its hash', async (t) => {
    t.equal(await redis.client.exists(`tg:token:${hashSecret(album.token)}`), 1)
    const keys = await redis.client.keys('*')
    t.notMatch(keys.join(' '), album.token)
  })

  t.test('no log line ever contains a secret, link URLs included', async (t) => {
    t.ok(gate.logs.length > 10)
    for (const token of [album.token, writer.token]) t.notMatch(gate.logs.join('\n'), token)
    t.ok(gate.logs.some((l) => l.includes('/api/link/<redacted>/studies')))
  })
})
