// The decision endpoint (issue 15.2) refuses everything the proxy refuses, and allows exactly what
// it forwards: every case of the scope-integrity tables (helpers/scope-tables.ts) and generated
// targets (fuzz/arbitraries.ts) is sent through the proxy and, in each of the three shapes (nginx
// auth_request, Traefik forwardAuth, Envoy ext_authz), to `/_tokengate/decide`; the status is the
// same, and on 200 X-Tokengate-Upstream-Uri and the identity headers are what the upstream received
// from the proxy. Also: refusals count in the failed-auth limiter, link secrets stay out of logs,
// studies-mode plans beyond a forward answer 501, and the endpoint can be moved or turned off.
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { mintSecret } from '../../src/credential/secret.js'
import { makeKeys } from '../../src/token/keys.js'
import { StudySets } from '../../src/token/study-sets.js'
import { params, pathArb, queryArb } from '../fuzz/arbitraries.js'
import { accessLog, admin, type GateHandle, startGate } from '../helpers/gate.js'
import { bearer, type RawResponse, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import {
  ACCEPT_SPELLINGS,
  ALBUM_TOKEN_REFUSALS,
  CANONICAL_QUERIES,
  DOT_SEGMENT_PATHS,
  FRAGMENT_TARGETS,
  SCOPE_SPELLINGS,
} from '../helpers/scope-tables.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const DECIDE = '/_tokengate/decide'
const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  mount: { zip: true },
  config: { identityHeaders: { attributes: { department: 'X-Tokengate-Department' } } },
})
t.teardown(gate.stop)

const tokens = admin(redis.client)
const reader = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '1h' })
const downloader = await tokens.create({
  kind: 'album',
  album: 'A1',
  perms: 'read,download',
  expiresIn: '1h',
})
const alice = await tokens.create({ kind: 'user', user: 'alice', expiresIn: '1h' })
await tokens.addMember('A1', 'alice')

type Shape = 'nginx' | 'traefik' | 'envoy'
const SHAPES: Shape[] = ['nginx', 'traefik', 'envoy']

interface Case {
  method?: string
  path: string
  headers?: Record<string, string>
}

/** Ask the endpoint about `c` as `shape` would. */
function ask(g: GateHandle, shape: Shape, c: Case): Promise<RawResponse> {
  const method = c.method ?? 'GET'
  const headers = { ...c.headers }
  if (shape === 'nginx')
    return send(g.url, {
      path: DECIDE,
      headers: { ...headers, 'x-original-method': method, 'x-original-uri': c.path },
    })
  if (shape === 'traefik')
    return send(g.url, {
      path: DECIDE,
      headers: {
        ...headers,
        'x-forwarded-method': method,
        'x-forwarded-uri': c.path,
        'x-forwarded-host': 'pacs.example.org',
        'x-forwarded-proto': 'https',
      },
    })
  return send(g.url, { method, path: `${DECIDE}${c.path}`, headers })
}

const IDENTITY = ['x-tokengate-user', 'x-tokengate-scope', 'x-tokengate-token-id', 'x-tokengate-department']

/**
 * Send `c` through the proxy, then ask each shape about it: the same status; on a forward, the
 * upstream URI and identity headers the upstream saw; never an upstream request from the endpoint.
 */
async function same(t: Test, c: Case, label = c.path): Promise<number> {
  const before = upstream.requests.length
  const body = c.method === 'POST' || c.method === 'PUT' ? { body: 'x' } : {}
  const proxied = await send(gate.url, {
    method: c.method ?? 'GET',
    path: c.path,
    headers: c.headers,
    ...body,
  })
  const seen = upstream.requests.length > before ? upstream.requests.at(-1) : undefined
  for (const shape of SHAPES) {
    const count = upstream.requests.length
    const res = await ask(gate, shape, c)
    t.equal(upstream.requests.length, count, `${label} (${shape}): the endpoint never forwards`)
    if (seen && shape === 'traefik' && `/dicom-web${c.path.slice('/api'.length)}` !== seen.url) {
      // Traefik forwards the client's bytes: only an already canonical, scoped target may pass.
      t.equal(res.status, 501, `${label} (${shape}): would reach the upstream unscoped`)
      t.match(res.json(), { error: 'not_implemented' }, `${label} (${shape}): says so`)
    } else if (seen) {
      t.equal(res.status, 200, `${label} (${shape}): allowed as the proxy allowed it`)
      t.equal(res.headers['x-tokengate-upstream-uri'], seen.url, `${label} (${shape}): the upstream URI`)
      for (const name of IDENTITY)
        t.equal(res.headers[name], seen.headers[name], `${label} (${shape}): ${name}`)
      t.notOk(res.headers['x-forwarded-for'], `${label} (${shape}): no forwarding headers in the answer`)
    } else {
      t.equal(res.status, proxied.status, `${label} (${shape}): refused as the proxy refused it`)
      t.equal(res.text, proxied.text, `${label} (${shape}): the same body`)
    }
  }
  return proxied.status
}

t.test('every case of the scope-integrity tables gets the proxy answer from the endpoint', async (t) => {
  const r = bearer(reader.token)
  for (const q of SCOPE_SPELLINGS) t.equal(await same(t, { path: `/api/studies?${q}`, headers: r }), 400)
  for (const path of FRAGMENT_TARGETS) t.equal(await same(t, { path, headers: r }), 400)
  for (const path of DOT_SEGMENT_PATHS) t.equal(await same(t, { path, headers: r }), 400)
  for (const q of ACCEPT_SPELLINGS)
    t.equal(await same(t, { path: `/api/studies/1.2.3?${q}`, headers: r }), 400)
  for (const [q, status] of ALBUM_TOKEN_REFUSALS)
    t.equal(await same(t, { path: `/api/studies?${q}`, headers: r }), status)
  for (const [q, want] of CANONICAL_QUERIES) {
    t.equal(await same(t, { path: `/api/studies?${q}`, headers: r }), 200)
    t.equal(upstream.requests.at(-1)?.url, want, `${q}: the table's canonical target`)
  }
})

t.test('permissions, credentials and zip downloads are decided as the proxy decides them', async (t) => {
  const cases: [string, Case][] = [
    ['read token cannot STOW', { method: 'POST', path: '/api/studies', headers: bearer(reader.token) }],
    [
      'read token cannot delete',
      { method: 'DELETE', path: '/api/studies/1.2.3', headers: bearer(reader.token) },
    ],
    [
      'read token cannot zip',
      { path: '/api/studies/1.2.3', headers: { ...bearer(reader.token), accept: 'application/zip' } },
    ],
    [
      'download token can zip',
      { path: '/api/studies/1.2.3', headers: { ...bearer(downloader.token), accept: 'application/zip' } },
    ],
    ['user token in its album', { path: '/api/studies?album=A1&limit=2', headers: bearer(alice.token) }],
    ['user token in its inbox', { path: '/api/studies?inbox=true', headers: bearer(alice.token) }],
    ['user token, not a member', { path: '/api/studies?album=A2', headers: bearer(alice.token) }],
    [
      'user token, album and inbox',
      { path: '/api/studies?album=A1&inbox=true', headers: bearer(alice.token) },
    ],
    ['no credential', { path: '/api/studies' }],
    ['unknown token', { path: '/api/studies', headers: bearer(mintSecret('tg_')) }],
    ['malformed token', { path: '/api/studies', headers: bearer('tg_x') }],
    ['bad scheme', { path: '/api/studies', headers: { authorization: 'Digest x' } }],
    ['secret in the query', { path: `/api/studies?x=${reader.token}`, headers: bearer(reader.token) }],
    ['a link path', { path: `/api/link/${reader.token}/studies?limit=1` }],
    [
      'a link and another bearer',
      { path: `/api/link/${reader.token}/studies`, headers: bearer(alice.token) },
    ],
    ['no such mount', { path: '/other/studies', headers: bearer(reader.token) }],
    ['no such rule', { method: 'PATCH', path: '/api/studies', headers: bearer(reader.token) }],
  ]
  const statuses = []
  for (const [name, c] of cases) statuses.push(await same(t, c, name))
  t.same(statuses, [403, 403, 403, 200, 200, 200, 404, 400, 401, 401, 401, 400, 400, 200, 400, 404, 404])
})

t.test(
  `generated targets: the endpoint answers as the proxy does (${Math.round(params.numRuns / 20)} runs)`,
  async (t) => {
    const SENDABLE = /^[\x21-\x7e]*$/
    const target = fc
      .tuple(pathArb, fc.option(queryArb))
      .map(([path, q]) => `/api${path}${q === null ? '' : `?${q}`}`)
      .filter((url) => SENDABLE.test(url))
    await fc.assert(
      fc.asyncProperty(target, async (path) => {
        const before = upstream.requests.length
        const proxied = await send(gate.url, { path, headers: bearer(reader.token) })
        const seen = upstream.requests.length > before ? upstream.requests.at(-1) : undefined
        const res = await ask(gate, 'nginx', { path, headers: bearer(reader.token) })
        if (seen) {
          if (res.status !== 200 || res.headers['x-tokengate-upstream-uri'] !== seen.url)
            throw new Error(
              `${path}: proxy sent ${seen.url}, endpoint ${res.status} ${res.headers['x-tokengate-upstream-uri']}`,
            )
        } else if (res.status !== proxied.status)
          throw new Error(`${path}: proxy ${proxied.status}, endpoint ${res.status}`)
      }),
      { ...params, numRuns: Math.max(50, Math.round(params.numRuns / 20)) },
    )
    t.pass('every generated target')
  },
)

t.test('the original request is named one way only, by one of the three shapes', async (t) => {
  const r = bearer(reader.token)
  const cases: [string, Parameters<typeof send>[1], number, string][] = [
    ['no shape at all', { path: DECIDE, headers: r }, 400, 'invalid_request'],
    [
      'a URI that is not a path',
      { path: DECIDE, headers: { ...r, 'x-original-uri': 'http://evil/api/studies' } },
      400,
      'invalid_request',
    ],
    [
      'Traefik without a method',
      { path: DECIDE, headers: { ...r, 'x-forwarded-uri': '/api/studies' } },
      400,
      'invalid_request',
    ],
    [
      'a method that is no token',
      { path: DECIDE, headers: { ...r, 'x-original-method': 'GE T', 'x-original-uri': '/api/studies' } },
      400,
      'invalid_request',
    ],
    [
      'nginx and Traefik headers at once',
      {
        path: DECIDE,
        headers: {
          ...r,
          'x-original-uri': '/api/studies',
          'x-forwarded-method': 'GET',
          'x-forwarded-uri': '/api/studies?album=A2',
        },
      },
      400,
      'ambiguous_request',
    ],
    [
      'a header and a path below',
      { path: `${DECIDE}/api/studies`, headers: { ...r, 'x-original-uri': '/api/studies?album=A2' } },
      400,
      'ambiguous_request',
    ],
    [
      'a repeated X-Original-URI',
      {
        path: DECIDE,
        headers: [
          ['authorization', `Bearer ${reader.token}`],
          ['x-original-uri', '/api/studies'],
          ['x-original-uri', '/api/studies?album=A2'],
        ],
      },
      400,
      'ambiguous_request',
    ],
  ]
  for (const [name, req, status, error] of cases) {
    const res = await send(gate.url, req)
    t.equal(res.status, status, name)
    t.equal((res.json() as { error: string }).error, error, `${name}: ${error}`)
  }
  const path = await send(gate.url, { path: `${DECIDE}x`, headers: r })
  t.equal(path.status, 404, 'a path that only begins like the endpoint is not the endpoint')
})

t.test('a link secret in the decided URI never reaches a log line or the answer', async (t) => {
  for (const shape of SHAPES) {
    const bad = await ask(gate, shape, { path: `/api/link/${reader.token}x/studies` })
    t.equal(bad.status, 401, `${shape}: a wrong link is refused`)
    t.notMatch(bad.text, reader.token, `${shape}: not in the refusal`)
    const res = await ask(gate, shape, { path: `/api/link/${reader.token}/studies?limit=1` })
    if (shape === 'traefik') {
      t.equal(res.status, 501, 'Traefik would forward the link path itself: refused')
      continue
    }
    t.equal(res.status, 200, shape)
    t.equal(
      res.headers['x-tokengate-upstream-uri'],
      '/dicom-web/studies?limit=1&album=A1',
      `${shape}: no link in the upstream URI`,
    )
  }
  t.notOk(
    gate.logs.some((l) => l.includes(reader.token)),
    'no log line carries the secret',
  )
  t.ok(
    accessLog(gate).some((l) => l.path === `${DECIDE}/api/link/<redacted>/studies`),
    'Envoy form logged redacted',
  )
})

t.test('refusals at the endpoint count in the failed-auth limiter, as at the proxy', async (t) => {
  const keyPrefix = 'lim:'
  const limited = await startGate({
    redis: { url: redis.url, keyPrefix },
    upstream: upstream.url,
    config: { authLimiter: { maxFailures: 3, window: '1m' } },
  })
  t.teardown(limited.stop)
  const good = await admin(redis.client, keyPrefix).create({
    kind: 'album',
    album: 'A',
    perms: 'read',
    expiresIn: '1h',
  })
  t.equal(
    (await ask(limited, 'nginx', { path: '/api/studies', headers: bearer(good.token) })).status,
    200,
    'allowed first',
  )
  for (let i = 0; i < 3; i++)
    t.equal(
      (await ask(limited, SHAPES[i] as Shape, { path: '/api/studies', headers: bearer(mintSecret('tg_')) }))
        .status,
      401,
    )
  const cut = await ask(limited, 'nginx', { path: '/api/studies', headers: bearer(good.token) })
  t.equal(cut.status, 429, 'past the threshold even a good token is cut')
  t.ok(cut.headers['retry-after'], 'with Retry-After')
})

t.test('studies-mode plans beyond a forward answer 501 and say to use tokengate as the proxy', async (t) => {
  const keyPrefix = 'st:'
  const studies = await startGate({
    redis: { url: redis.url, keyPrefix },
    upstream: `${upstream.url}/dicom-web`,
    wado: `${upstream.url}/wado`,
    config: { scoping: 'studies' },
  })
  t.teardown(studies.stop)
  const sets = new StudySets(redis.client, makeKeys(keyPrefix))
  await sets.add({ kind: 'inbox', user: 'bob' }, ['1.2.3'])
  const st = admin(redis.client, keyPrefix)
  const bob = await st.create({ kind: 'user', user: 'bob', expiresIn: '1h' })
  const carol = await st.create({ kind: 'user', user: 'carol', expiresIn: '1h' })
  const cases: [string, Case, number, string | null][] = [
    ['a search narrowed to no study', { path: '/api/studies', headers: bearer(carol.token) }, 501, 'empty'],
    [
      'a STOW to be recorded',
      { method: 'POST', path: '/api/studies?inbox=true', headers: bearer(bob.token) },
      501,
      'STOW',
    ],
    [
      'a study taken out of the inbox',
      { method: 'DELETE', path: '/api/studies/1.2.3?inbox=true', headers: bearer(bob.token) },
      501,
      'study-set',
    ],
    [
      'a WADO-URI retrieve to check against the archive',
      {
        path: '/api/wado?requestType=WADO&studyUID=1.2.3&seriesUID=1.2.3.4&objectUID=1.2.3.4.5',
        headers: bearer(bob.token),
      },
      501,
      'WADO-URI',
    ],
    ['a retrieve of a study in scope', { path: '/api/studies/1.2.3', headers: bearer(bob.token) }, 200, null],
    [
      'a retrieve of a study out of scope',
      { path: '/api/studies/9.9.9', headers: bearer(bob.token) },
      404,
      null,
    ],
  ]
  for (const [name, c, status, word] of cases) {
    for (const shape of SHAPES) {
      const before = upstream.requests.length
      const res = await ask(studies, shape, c)
      t.equal(res.status, status, `${name} (${shape})`)
      t.equal(upstream.requests.length, before, `${name} (${shape}): nothing forwarded`)
      if (word) {
        const body = res.json() as { error: string; reason: string }
        t.equal(body.error, 'not_implemented', `${name}: not_implemented`)
        t.match(body.reason, /tokengate as the proxy/, `${name}: says to use tokengate as the proxy`)
      }
    }
  }
  const retrieve = await ask(studies, 'nginx', { path: '/api/studies/1.2.3', headers: bearer(bob.token) })
  t.equal(retrieve.headers['x-tokengate-upstream-uri'], '/dicom-web/studies/1.2.3')
})

t.test('the endpoint can be moved, or turned off (the path then goes to the mounts)', async (t) => {
  const moved = await startGate({
    redisUrl: redis.url,
    upstream: upstream.url,
    config: { decisionEndpoint: { path: '/auth/check' } },
  })
  t.teardown(moved.stop)
  const c = { path: '/api/studies', headers: bearer(reader.token) }
  t.equal(
    (await send(moved.url, { path: '/auth/check', headers: { ...c.headers, 'x-original-uri': c.path } }))
      .status,
    200,
  )
  t.equal((await ask(moved, 'nginx', c)).status, 404, 'the default path is a plain 404 there')
  const off = await startGate({
    redisUrl: redis.url,
    upstream: upstream.url,
    mount: { path: '/' },
    config: { decisionEndpoint: { enabled: false } },
  })
  t.teardown(off.stop)
  const before = upstream.requests.length
  const res = await send(off.url, { path: DECIDE, headers: { ...c.headers, 'x-original-uri': c.path } })
  t.equal(res.status, 404, 'off: no rule for the path under the root mount')
  t.equal(upstream.requests.length, before)
})
