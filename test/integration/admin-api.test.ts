// The admin HTTP API (admin/api.ts) on a running in-process gate against a real redis-server and
// a recording upstream: tokens made through it work (and stop working) through the gate, list and
// show never return a secret, every refusal has its status and JSON body, and every change lands
// in the audit stream (in order, with its actor, never a secret) that `tokengate audit` and
// `GET /audit` list.
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { AuditEvent } from '../../src/admin/audit.js'
import { TokenAdmin } from '../../src/admin/tokens.js'
import { makeKeys } from '../../src/token/keys.js'
import { startGate } from '../helpers/gate.js'
import { bearer, type RawResponse, send } from '../helpers/http.js'
import { runTokengate, writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { probeUntil } from '../helpers/wait.js'

const KEY = 'test-admin-key-0123456789abcdefghijklmnop'
const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  config: { admin: { port: 0, key: KEY } },
})
t.teardown(gate.stop)
const adminUrl = `http://127.0.0.1:${gate.app.adminAddress?.port}`
const dir = await mkdtemp(join(tmpdir(), 'tokengate-admin-api-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

/** Call the admin API with the admin key (unless other headers are given) and a JSON body. */
function api(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = bearer(KEY),
): Promise<RawResponse> {
  return send(adminUrl, {
    method,
    path,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  })
}

interface Created {
  id: string
  token: string
}

async function create(body: Record<string, unknown>): Promise<Created> {
  const res = await api('POST', '/tokens', body)
  if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`)
  return res.json() as Created
}

/** Status of a request through the gate with this token. */
async function through(token: string, path = '/api/studies', method = 'GET'): Promise<number> {
  return (await send(gate.url, { method, path, headers: bearer(token) })).status
}

/** Every audit entry in the stream, oldest first. */
async function stream(): Promise<[string, string[]][]> {
  return redis.client.xrange('tg:audit', '-', '+')
}

t.test('the admin API is off unless `admin` is configured', async (t) => {
  const plain = await startGate({ redisUrl: redis.url, upstream: `${upstream.url}/dicom-web` })
  t.teardown(plain.stop)
  t.equal(plain.app.adminAddress, undefined)
  t.notOk(
    plain.logs.some((l) => l.includes('admin api listening')),
    'no admin listener is started',
  )
  t.ok(gate.logs.some((l) => l.includes('"msg":"admin api listening"')))
})

t.test(
  'a token created through the API works through the gate until disabled, again once enabled, and never after revoke',
  async (t) => {
    const res = await api('POST', '/tokens', {
      kind: 'album',
      album: 'RT',
      perms: ['read'],
      expiresIn: '1h',
      description: 'round trip',
    })
    t.equal(res.status, 201)
    const created = res.json() as Created & Record<string, unknown>
    t.match(created, { id: /^tok_/, token: /^tg_/, kind: 'album', album: 'RT', perms: ['read'] })
    t.equal(res.headers.location, `/tokens/${created.id}`)
    t.equal(res.headers['cache-control'], 'no-store', 'the answer with the secret is never cached')

    t.equal(await through(created.token), 200)
    t.match(upstream.requests.at(-1)?.url, /album=RT/)
    t.equal(await through(created.token, '/api/studies', 'POST'), 403, 'read only: STOW is refused')

    const listed = await api('GET', '/tokens?album=RT')
    t.equal(listed.status, 200)
    t.same(
      (listed.json() as { items: { id: string }[] }).items.map((x) => x.id),
      [created.id],
    )
    const shown = await api('GET', `/tokens/${created.id}`)
    t.match(shown.json(), { id: created.id, status: 'active', description: 'round trip', revokedAt: null })
    for (const answer of [listed, shown]) {
      t.notOk(answer.text.includes(created.token), 'no secret')
      t.notOk(answer.text.includes(sha256(created.token)), 'no hash')
      t.notOk('token' in (answer.json() as Record<string, unknown>), 'no token field')
    }

    t.match((await api('POST', `/tokens/${created.id}/disable`)).json(), { status: 'disabled' })
    t.equal(await through(created.token), 401, 'disabled: refused')
    t.match((await api('POST', `/tokens/${created.id}/enable`)).json(), { status: 'active' })
    t.equal(await through(created.token), 200, 'enabled again: works')
    const revoked = await api('POST', `/tokens/${created.id}/revoke`)
    t.match([revoked.status, revoked.json()], [200, { status: 'revoked', revokedAt: /^\d{4}-/ }])
    t.equal(await through(created.token), 401, 'revoked: refused')

    const again = await api('POST', `/tokens/${created.id}/enable`)
    t.equal(again.status, 400)
    t.match(again.json(), { error: 'invalid_request', reason: /revocation is permanent/, field: 'id' })
    t.equal(await through(created.token), 401, 'and stays refused')

    const requests = gate.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'admin request')
    t.match(requests.at(-1), {
      method: 'POST',
      route: '/tokens/:id/enable',
      status: 400,
      refusal: 'invalid_input',
      field: 'id',
      remote: '127.0.0.1',
    })
    t.match(requests.at(-7), { method: 'POST', route: '/tokens', status: 201 }, 'one line per request')
    t.notOk(
      requests.some((l) => JSON.stringify(l).includes(created.id)),
      'the request line names the route pattern, not the path',
    )
  },
)

t.test('POST /users/{user}/revoke-tokens revokes every token of that user and nobody else', async (t) => {
  const mine = [
    await create({ kind: 'user', user: 'rv-bob', expiresIn: '1h' }),
    await create({ kind: 'album', album: 'RV', perms: 'read', user: 'rv-bob', expiresIn: '300d' }),
  ]
  const other = await create({ kind: 'user', user: 'rv-carol', expiresIn: '1h' })
  for (const c of [...mine, other]) t.equal(await through(c.token), 200)

  const res = await api('POST', '/users/rv-bob/revoke-tokens')
  t.match([res.status, res.json()], [200, { user: 'rv-bob', revoked: 2 }])
  for (const c of mine) t.equal(await through(c.token), 401, `${c.id} refused`)
  t.equal(await through(other.token), 200, "another user's token still works")
  t.same((await api('POST', '/users/rv-bob/revoke-tokens')).json(), { user: 'rv-bob', revoked: 0 })
})

t.test(
  'a record stored with an expiry past any date (by an older version) does not break list',
  async (t) => {
    const hash = sha256('hand-made')
    await redis.client.hset(`tg:token:${hash}`, {
      id: 'tok_handmade',
      kind: 'album',
      album: 'HM',
      perms: 'read',
      expiresAt: '9000000000000000',
    })
    await redis.client.set('tg:id:tok_handmade', hash)
    await redis.client.sadd('tg:tokens', 'tok_handmade')
    await redis.client.sadd('tg:album:HM:tokens', 'tok_handmade')
    const listed = await api('GET', '/tokens')
    t.equal(listed.status, 200, listed.text)
    t.notOk(listed.text.includes('tok_handmade'), 'the malformed record is skipped, as the proxy refuses it')
    t.equal((await api('GET', '/tokens/tok_handmade')).status, 404)
    await redis.client.del(`tg:token:${hash}`, 'tg:id:tok_handmade')
  },
)

t.test(
  'PUT and DELETE /albums/{album}/members/{user} change which album a user token may ask for',
  async (t) => {
    const user = await create({ kind: 'user', user: 'mem-alice', expiresIn: '1h' })
    const path = '/api/studies?album=MEM'
    t.equal(await through(user.token, path), 404, 'not a member yet')

    const put = await api('PUT', '/albums/MEM/members/mem-alice')
    t.match([put.status, put.json()], [200, { album: 'MEM', user: 'mem-alice', changed: true }])
    t.equal(await through(user.token, path), 200, 'a member now')
    t.match((await api('PUT', '/albums/MEM/members/mem-alice')).json(), { changed: false })

    const del = await api('DELETE', '/albums/MEM/members/mem-alice')
    t.match([del.status, del.json()], [200, { changed: true }])
    t.equal(await through(user.token, path), 404, 'no longer a member')
    t.match((await api('DELETE', '/albums/MEM/members/mem-alice')).json(), { changed: false })
    t.equal(await redis.client.sismember('tg:user:mem-alice:albums', 'MEM'), 0)
  },
)

interface Refusal {
  what: string
  method: string
  path: string
  headers?: Record<string, string>
  body?: string
  status: number
  error: string
  reason?: RegExp
  field?: string
  more?: Record<string, string | RegExp>
}

const json = { ...bearer(KEY), 'content-type': 'application/json' }
const album = (fields: Record<string, unknown>) =>
  JSON.stringify({ kind: 'album', album: 'RF', perms: 'read', expiresIn: '1h', ...fields })

const refusals: Refusal[] = [
  {
    what: 'no key',
    method: 'GET',
    path: '/tokens',
    headers: {},
    status: 401,
    error: 'unauthorized',
    more: { 'www-authenticate': 'Bearer realm="tokengate-admin"' },
  },
  {
    what: 'a wrong key',
    method: 'GET',
    path: '/tokens',
    headers: bearer(`${KEY.slice(0, -1)}X`),
    status: 401,
    error: 'unauthorized',
  },
  {
    what: 'a prefix of the key',
    method: 'GET',
    path: '/tokens',
    headers: bearer(KEY.slice(0, 8)),
    status: 401,
    error: 'unauthorized',
  },
  {
    what: 'the key sent as Basic',
    method: 'GET',
    path: '/tokens',
    headers: { authorization: `Basic ${Buffer.from(`admin:${KEY}`).toString('base64')}` },
    status: 401,
    error: 'unauthorized',
  },
  {
    what: 'no key on an unknown route',
    method: 'GET',
    path: '/nothing',
    headers: {},
    status: 401,
    error: 'unauthorized',
  },
  {
    what: 'bad JSON',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: '{"kind": ',
    status: 400,
    error: 'invalid_request',
    reason: /not valid JSON/,
  },
  {
    what: 'a JSON array',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: '[]',
    status: 400,
    error: 'invalid_request',
    reason: /JSON object/,
  },
  {
    what: 'an unknown field',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ expires: '1h' }),
    status: 400,
    error: 'invalid_request',
    field: 'expires',
    reason: /unknown field "expires"/,
  },
  {
    what: 'no kind',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: '{}',
    status: 400,
    error: 'invalid_request',
    field: 'kind',
  },
  {
    what: 'an unknown kind',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ kind: 'admin' }),
    status: 400,
    error: 'invalid_request',
    field: 'kind',
  },
  {
    what: 'an unknown permission',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ perms: ['read', 'sudo'] }),
    status: 400,
    error: 'invalid_request',
    field: 'perms',
    reason: /unknown permission "sudo"/,
  },
  {
    what: 'perms of the wrong type',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ perms: 7 }),
    status: 400,
    error: 'invalid_request',
    field: 'perms',
  },
  {
    what: 'a user of the wrong type',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ user: ['a'] }),
    status: 400,
    error: 'invalid_request',
    field: 'user',
  },
  {
    what: 'a colon in the user',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ user: 'org:u' }),
    status: 400,
    error: 'invalid_request',
    field: 'user',
  },
  {
    what: 'a newline in the user',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ user: 'bob\nforged' }),
    status: 400,
    error: 'invalid_request',
    field: 'user',
  },
  {
    what: 'an album id of 129 characters',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ album: 'a'.repeat(129) }),
    status: 400,
    error: 'invalid_request',
    field: 'album',
  },
  {
    what: 'an expiry of 9000000000000000 ms (past any date)',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ expiresIn: undefined, expiresAt: 9_000_000_000_000_000 }),
    status: 400,
    error: 'invalid_request',
    field: 'expiresAt',
    reason: /tokens\.maxLifetime/,
  },
  {
    what: 'an expiry past tokens.maxLifetime',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ expiresIn: '400d' }),
    status: 400,
    error: 'invalid_request',
    field: 'expiresIn',
    reason: /more than 365d/,
  },
  {
    what: 'a token id of 65 characters',
    method: 'GET',
    path: `/tokens/tok_${'x'.repeat(61)}`,
    status: 400,
    error: 'invalid_request',
    field: 'id',
  },
  {
    what: 'a token id with a newline',
    method: 'POST',
    path: '/tokens/tok_a%0Ab/revoke',
    status: 400,
    error: 'invalid_request',
    field: 'id',
  },
  {
    what: 'a user id with a newline in revoke-tokens',
    method: 'POST',
    path: '/users/bob%0A/revoke-tokens',
    status: 400,
    error: 'invalid_request',
    field: 'user',
  },
  {
    what: 'a duration that is none',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ expiresIn: 'soon' }),
    status: 400,
    error: 'invalid_request',
    field: 'expiresIn',
  },
  {
    what: 'an expiry in the past',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ expiresIn: undefined, expiresAt: '2020-01-01' }),
    status: 400,
    error: 'invalid_request',
    field: 'expiresAt',
    reason: /not in the future/,
  },
  {
    what: 'no expiry',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ expiresIn: undefined }),
    status: 400,
    error: 'invalid_request',
    field: 'expiresAt',
    reason: /mandatory/,
  },
  {
    what: 'an unknown query parameter',
    method: 'GET',
    path: '/tokens?usr=bob',
    status: 400,
    error: 'invalid_request',
    field: 'usr',
  },
  {
    what: 'a repeated query parameter',
    method: 'GET',
    path: '/tokens?user=a&user=b',
    status: 400,
    error: 'invalid_request',
    field: 'user',
  },
  {
    what: 'a body field on an action',
    method: 'POST',
    path: '/tokens/tok_x/revoke',
    headers: json,
    body: '{"reason":"x"}',
    status: 400,
    error: 'invalid_request',
    field: 'reason',
  },
  {
    what: 'a bad percent-escape',
    method: 'GET',
    path: '/tokens/%E0%A4%A',
    status: 400,
    error: 'invalid_request',
  },
  {
    what: 'an unknown id',
    method: 'GET',
    path: '/tokens/tok_doesnotexist00',
    status: 404,
    error: 'not_found',
    field: 'id',
    reason: /no token with that id/,
  },
  {
    what: 'revoking an unknown id',
    method: 'POST',
    path: '/tokens/tok_doesnotexist00/revoke',
    status: 404,
    error: 'not_found',
    field: 'id',
  },
  {
    what: 'an unknown route',
    method: 'GET',
    path: '/token',
    status: 404,
    error: 'not_found',
    reason: /no route GET \/token/,
  },
  { what: 'a trailing slash', method: 'GET', path: '/tokens/', status: 404, error: 'not_found' },
  { what: 'an empty id', method: 'POST', path: '/tokens//revoke', status: 404, error: 'not_found' },
  {
    what: 'DELETE on /tokens',
    method: 'DELETE',
    path: '/tokens',
    status: 405,
    error: 'method_not_allowed',
    more: { allow: 'POST, GET' },
  },
  {
    what: 'GET on an action',
    method: 'GET',
    path: '/tokens/tok_x/revoke',
    status: 405,
    error: 'method_not_allowed',
    more: { allow: 'POST' },
  },
  {
    what: 'POST on a membership',
    method: 'POST',
    path: '/albums/A/members/u',
    status: 405,
    error: 'method_not_allowed',
    more: { allow: 'PUT, DELETE' },
  },
  {
    what: 'a body over 64 KB',
    method: 'POST',
    path: '/tokens',
    headers: json,
    body: album({ description: 'x'.repeat(70_000) }),
    status: 413,
    error: 'payload_too_large',
    more: { connection: 'close' },
  },
  {
    what: 'a chunked body over 64 KB',
    method: 'POST',
    path: '/tokens',
    headers: { ...json, 'transfer-encoding': 'chunked' },
    body: `${(70_000).toString(16)}\r\n${'x'.repeat(70_000)}\r\n0\r\n\r\n`,
    status: 413,
    error: 'payload_too_large',
  },
  {
    what: 'a text/plain body',
    method: 'POST',
    path: '/tokens',
    headers: { ...bearer(KEY), 'content-type': 'text/plain' },
    body: album({}),
    status: 415,
    error: 'unsupported_media_type',
    more: { accept: 'application/json' },
  },
  {
    what: 'a body without a content type',
    method: 'POST',
    path: '/tokens',
    headers: bearer(KEY),
    body: album({}),
    status: 415,
    error: 'unsupported_media_type',
  },
  {
    what: 'JSON in another charset',
    method: 'POST',
    path: '/tokens',
    headers: { ...bearer(KEY), 'content-type': 'application/json; charset=latin1' },
    body: album({}),
    status: 415,
    error: 'unsupported_media_type',
  },
]

t.test('every refusal has its status, a JSON {error, reason, field} body, and changes nothing', async (t) => {
  const keys = await redis.client.dbsize()
  const audited = await redis.client.xlen('tg:audit')
  for (const r of refusals) {
    const res = await send(adminUrl, {
      method: r.method,
      path: r.path,
      headers: r.headers ?? bearer(KEY),
      ...(r.body === undefined ? {} : { body: r.body }),
    })
    t.equal(res.status, r.status, `${r.what}: status`)
    t.match(res.headers['content-type'], /^application\/json/, `${r.what}: JSON`)
    const body = res.json() as { error: string; reason: string; field?: string }
    t.equal(body.error, r.error, `${r.what}: error`)
    t.type(body.reason, 'string', `${r.what}: a reason`)
    if (r.reason) t.match(body.reason, r.reason, `${r.what}: reason`)
    t.equal(body.field, r.field, `${r.what}: field`)
    for (const [name, value] of Object.entries(r.more ?? {}))
      t.match(res.headers[name], value, `${r.what}: ${name}`)
  }
  t.equal(await redis.client.dbsize(), keys, 'no key was written')
  t.equal(await redis.client.xlen('tg:audit'), audited, 'nothing was audited')
  t.notOk(
    gate.logs.some((l) => l.includes(KEY) || l.includes(KEY.slice(0, 8))),
    'the admin key (or a part sent as a key) is in no log line',
  )
})

t.test('an unreachable Redis is 503, and the API recovers with it', async (t) => {
  const own = await startRedis()
  t.teardown(own.stop)
  const g = await startGate({
    redisUrl: own.url,
    upstream: `${upstream.url}/dicom-web`,
    config: { admin: { port: 0, key: KEY } },
  })
  t.teardown(g.stop)
  const url = `http://127.0.0.1:${g.app.adminAddress?.port}`
  const call = (method: string, path: string, body?: string) =>
    send(url, { method, path, headers: json, ...(body ? { body } : {}) })

  await own.kill()
  for (const [method, path, body] of [
    ['GET', '/tokens'],
    ['POST', '/tokens', album({})],
    ['PUT', '/albums/A/members/u'],
    ['GET', '/audit'],
  ] as const) {
    const res = await call(method, path, body)
    t.equal(res.status, 503, `${method} ${path}`)
    t.same(res.json(), {
      error: 'service_unavailable',
      reason: 'the token store (Redis) is unavailable; retry later',
    })
    t.equal(res.headers['retry-after'], '1')
  }
  t.equal((await call('POST', '/tokens', '{}')).status, 400, 'input is still checked first')

  await own.restart()
  const status = await probeUntil(
    async () => (await call('GET', '/tokens')).status,
    (s) => s === 200,
  )
  t.equal(status, 200, 'answers again once Redis is back, without a restart')
})

t.test(
  'every change is audited in order, as admin-api with the client address, with no secret anywhere',
  async (t) => {
    const before = await stream()
    const created = await create({ kind: 'album', album: 'AU', perms: 'read,write', expiresIn: '2h' })
    await api('POST', `/tokens/${created.id}/disable`)
    await api('POST', `/tokens/${created.id}/enable`)
    await api('POST', `/tokens/${created.id}/revoke`)
    await api('PUT', '/albums/AU/members/au-dan')
    await api('DELETE', '/albums/AU/members/au-dan')
    await api('DELETE', '/albums/AU/members/au-dan')
    await api('POST', '/users/au-dan/revoke-tokens')
    await api('GET', '/tokens') // a read is not audited

    const entries = (await stream()).slice(before.length)
    const ids = entries.map(([id]) => id)
    const events = (await api('GET', '/audit?limit=8')).json() as { events: AuditEvent[] }
    t.same(
      events.events.map((e) => e.id),
      ids,
      'GET /audit lists the same entries, oldest first',
    )
    t.match(events.events, [
      {
        op: 'token.create',
        actor: 'admin-api',
        client: '127.0.0.1',
        tokenId: created.id,
        kind: 'album',
        album: 'AU',
        perms: ['read', 'write'],
        expiresAt: /^\d{4}-\d\d-\d\dT/,
      },
      { op: 'token.disable', tokenId: created.id, album: 'AU', changed: true },
      { op: 'token.enable', tokenId: created.id, changed: true },
      { op: 'token.revoke', tokenId: created.id, changed: true },
      { op: 'album.add-member', album: 'AU', user: 'au-dan', changed: true },
      { op: 'album.remove-member', album: 'AU', user: 'au-dan', changed: true },
      { op: 'album.remove-member', album: 'AU', user: 'au-dan', changed: false },
      { op: 'token.revoke-user', user: 'au-dan', count: 0 },
    ])
    for (const e of events.events) {
      t.match(e, { actor: 'admin-api', client: '127.0.0.1' })
      t.ok(Math.abs(Date.parse(e.at) - Date.now()) < 60_000, `${e.op}: at is an ISO time of now`)
    }

    const logged = gate.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'audit')
    t.same(
      logged.slice(-8).map((l) => [l.id, l.op, l.actor]),
      events.events.map((e) => [e.id, e.op, 'admin-api']),
      'each entry is also a log line with msg "audit"',
    )

    const everything = JSON.stringify(await stream())
    const logs = gate.logs.join('\n')
    for (const [where, text] of [
      ['the stream', everything],
      ['the logs', logs],
    ] as const) {
      t.notOk(text.includes(created.token), `no secret in ${where}`)
      t.notOk(text.includes(created.token.slice(3, 20)), `no part of a secret in ${where}`)
      t.notOk(text.includes(sha256(created.token)), `no token hash in ${where}`)
      t.notOk(text.includes(KEY), `no admin key in ${where}`)
    }
  },
)

t.test('GET /audit takes since (a duration or an ISO date) and limit, and refuses others', async (t) => {
  await api('PUT', '/albums/SINCE/members/since-eve')
  const last = ((await api('GET', '/audit?since=1m&limit=1')).json() as { events: AuditEvent[] }).events
  t.match(last, [{ op: 'album.add-member', album: 'SINCE', user: 'since-eve' }], 'the most recent one')
  t.same(
    (await api('GET', '/audit?since=2999-01-01')).json(),
    { events: [], nextCursor: null },
    'nothing in the future',
  )
  const all = (await api('GET', '/audit?since=2000-01-01T00:00:00Z&limit=10000')).json() as {
    events: AuditEvent[]
  }
  t.equal(all.events.length, await redis.client.xlen('tg:audit'), 'everything since 2000')
  for (const [query, field] of [
    ['since=yesterday', 'since'],
    ['since=3600', 'since'],
    ['limit=0', 'limit'],
    ['limit=10001', 'limit'],
    ['limit=ten', 'limit'],
    ['untill=1h', 'untill'],
  ] as const) {
    const res = await api('GET', `/audit?${query}`)
    t.match([res.status, res.json()], [400, { error: 'invalid_request', field }], query)
  }
})

t.test(
  'tokengate audit (the built CLI) lists what the API recorded, and the API what the CLI did',
  async (t) => {
    const config = await writeConfig(
      dir,
      'tokengate.yaml',
      `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n`,
    )
    await api('PUT', '/albums/CLI/members/cli-fay')
    const json = await runTokengate(['audit', '--since', '1h', '--limit', '1', '--json', '--config', config])
    t.equal(json.code, 0, json.stderr)
    t.match(JSON.parse(json.stdout), {
      events: [
        { op: 'album.add-member', album: 'CLI', user: 'cli-fay', actor: 'admin-api', client: '127.0.0.1' },
      ],
      nextCursor: /\S/,
    })
    const text = await runTokengate(['audit', '--since', '1h', '--limit', '1', '--config', config])
    t.match(text.stdout, /^TIME\s+ACTOR\s+OPERATION\s+TOKEN\s+USER\s+ALBUM\s+DETAILS\n/)
    t.match(
      text.stdout,
      /admin-api \(127\.0\.0\.1\)\s+album\.add-member\s+-\s+cli-fay\s+CLI\s+-\nnext page: --cursor \S+\n$/,
    )
    t.equal(
      (await runTokengate(['audit', '--since', '2999-01-01', '--config', config])).stdout,
      'no audit events\n',
    )

    const made = await runTokengate([
      'album',
      'remove-member',
      'CLI',
      'cli-fay',
      '--actor',
      'ops-jane',
      '--config',
      config,
    ])
    t.equal(made.code, 0, made.stderr)
    const events = ((await api('GET', '/audit?limit=1')).json() as { events: AuditEvent[] }).events
    t.match(events, [{ op: 'album.remove-member', actor: 'ops-jane', user: 'cli-fay', changed: true }])
    t.equal(events[0]?.client, undefined, 'a CLI change has no client address')
  },
)

t.test('the audit stream is capped near audit.maxLen (MAXLEN ~), keeping the newest', async (t) => {
  // Redis trims whole stream nodes: with 10 entries a node, the stream stays within maxLen + 10.
  await redis.client.config('SET', 'stream-node-max-entries', '10')
  t.teardown(() => redis.client.config('SET', 'stream-node-max-entries', '100'))
  const capped = new TokenAdmin(redis.client, makeKeys('cap:'), {
    secretPrefix: 'tg_',
    expiredGrace: 60_000,
    actor: { name: 'cap-test' },
    audit: { maxLen: 20 },
  })
  for (let i = 0; i < 100; i++) await capped.addMember(`A${i}`, 'cap-user')
  const length = await redis.client.xlen('cap:audit')
  t.ok(length >= 20 && length <= 30, `XLEN ${length} is within 20..30`)
  const listed = await capped.audit.list({ limit: 10_000 })
  t.equal(listed.length, length)
  t.equal(listed.at(-1)?.album, 'A99', 'the newest entry is kept')
  t.equal(listed[0]?.album, `A${100 - length}`, 'the oldest kept one follows on without a gap')
})
