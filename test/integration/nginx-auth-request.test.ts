// Debian's nginx in front of a recording upstream, with `auth_request` to tokengate's decision
// endpoint, configured by the shipped examples/nginx/tokengate.conf.template (rendered as envsubst
// would; bench/lib/nginx.js): allowed requests arrive rewritten — the upstream sees
// X-Tokengate-Upstream-Uri's path and query and tokengate's identity headers, never the client's
// credential or forged identity — and refused ones never arrive, with tokengate's status.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { NGINX, startNginxDecision } from '../../bench/lib/nginx.js'
import { mintSecret } from '../../src/credential/secret.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { freePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import {
  ALBUM_TOKEN_REFUSALS,
  CANONICAL_QUERIES,
  DOT_SEGMENT_PATHS,
  SCOPE_SPELLINGS,
} from '../helpers/scope-tables.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

if (!NGINX) {
  t.plan(0, 'nginx is not installed (apt-get install nginx-light)')
  process.exit(0)
}

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const gate = await startGate({ redisUrl: redis.url, upstream: `${upstream.url}/dicom-web` })
t.teardown(gate.stop)
const dir = await mkdtemp(join(tmpdir(), 'tg-nginx-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const port = await freePort()
const nginx = await startNginxDecision('nginx', dir, port, upstream.port, gate.port)
t.teardown(nginx.stop)
const edge = `http://127.0.0.1:${port}`

const tokens = admin(redis.client)
const reader = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '1h' })
const alice = await tokens.create({ kind: 'user', user: 'alice', expiresIn: '1h' })
await tokens.addMember('A1', 'alice')

/** Send through nginx; return the status and what the upstream received (undefined: nothing). */
async function viaNginx(path: string, headers: Record<string, string> = {}, method = 'GET') {
  const before = upstream.requests.length
  const res = await send(edge, { method, path, headers })
  return { res, seen: upstream.requests.length > before ? upstream.requests.at(-1) : undefined }
}

t.test(
  'allowed requests reach the upstream as tokengate decided: scoped, canonical, with identity',
  async (t) => {
    for (const [q, want] of CANONICAL_QUERIES) {
      const { res, seen } = await viaNginx(`/api/studies?${q}`, bearer(reader.token))
      t.equal(res.status, 200, q)
      t.equal(seen?.url, want, `${q}: the upstream got X-Tokengate-Upstream-Uri`)
      t.equal(seen?.headers['x-tokengate-scope'], 'album:A1', `${q}: scope`)
      t.match(seen?.headers['x-tokengate-token-id'], /^\S+$/, `${q}: token id`)
      t.notOk(seen?.headers.authorization, `${q}: the client's credential stays at nginx`)
    }
    const { seen } = await viaNginx('/api/studies?album=A1', bearer(alice.token))
    t.equal(seen?.url, '/dicom-web/studies?album=A1')
    t.equal(seen?.headers['x-tokengate-user'], 'alice', 'a user token: its user')
    t.equal(seen?.headers['x-tokengate-scope'], 'album:A1')
  },
)

t.test('a client cannot pose as someone else through nginx', async (t) => {
  const { res, seen } = await viaNginx('/api/studies', {
    ...bearer(reader.token),
    'x-tokengate-user': 'mallory',
    'x-tokengate-scope': 'user',
    'x-tokengate-token-id': 'forged',
  })
  t.equal(res.status, 200)
  t.notOk(seen?.headers['x-tokengate-user'], 'an album token has no user: the forged one is gone')
  t.equal(seen?.headers['x-tokengate-scope'], 'album:A1')
  t.not(seen?.headers['x-tokengate-token-id'], 'forged')
})

t.test('a link path is decided by tokengate and reaches the upstream without its secret', async (t) => {
  const { res, seen } = await viaNginx(`/api/link/${reader.token}/studies?limit=1`)
  t.equal(res.status, 200)
  t.equal(seen?.url, '/dicom-web/studies?limit=1&album=A1')
  t.notMatch(JSON.stringify(seen?.headers), reader.token, 'no header carries the secret upstream')
})

t.test('refused requests never reach the upstream and keep tokengate’s status', async (t) => {
  const cases: [string, string, Record<string, string>, number][] = [
    ...ALBUM_TOKEN_REFUSALS.map(([q, status]): [string, string, Record<string, string>, number] => [
      q,
      `/api/studies?${q}`,
      bearer(reader.token),
      status,
    ]),
    ...SCOPE_SPELLINGS.map((q): [string, string, Record<string, string>, number] => [
      q,
      `/api/studies?${q}`,
      bearer(reader.token),
      400,
    ]),
    ...DOT_SEGMENT_PATHS.map((p): [string, string, Record<string, string>, number] => [
      p,
      p,
      bearer(reader.token),
      400,
    ]),
    ['no credential', '/api/studies', {}, 401],
    ['unknown token', '/api/studies', bearer(mintSecret('tg_')), 401],
    ['a user token, not a member', '/api/studies?album=A2', bearer(alice.token), 404],
    [
      'a Traefik header sent by the client',
      '/api/studies',
      { ...bearer(reader.token), 'x-forwarded-uri': '/api/x' },
      200,
    ],
  ]
  for (const [name, path, headers, status] of cases) {
    const { res, seen } = await viaNginx(path, headers)
    t.equal(res.status, status, `${name}: ${status}`)
    if (status !== 200) t.notOk(seen, `${name}: never reached the upstream`)
  }
  const unauthorized = await viaNginx('/api/studies')
  t.match(
    unauthorized.res.headers['www-authenticate'],
    /^Bearer realm="tokengate"/,
    '401 keeps the challenge',
  )
  const stow = await viaNginx('/api/studies', bearer(reader.token), 'POST')
  t.equal(stow.res.status, 403, 'a read token cannot STOW')
  t.notOk(stow.seen)
})
