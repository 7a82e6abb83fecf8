// `scoping: query` end to end: album tokens pinned to their album whatever the client spells,
// user tokens choosing an album they belong to or their inbox, permissions per method.
import t, { type Test } from 'tap'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
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
import { probeUntil } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
// A KHEOPS-like upstream: it understands album/inbox and serves zip downloads.
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  mount: { zip: true },
})
t.teardown(gate.stop)

const tokens = admin(redis.client)
const reader = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '1h' })
const writer = await tokens.create({ kind: 'album', album: 'A1', perms: 'read,write', expiresIn: '1h' })
const downloader = await tokens.create({
  kind: 'album',
  album: 'A1',
  perms: 'read,download',
  expiresIn: '1h',
})
const appropriator = await tokens.create({
  kind: 'album',
  album: 'A1',
  perms: 'read,appropriate',
  expiresIn: '1h',
})
const alice = await tokens.create({ kind: 'user', user: 'alice', expiresIn: '1h' })
await tokens.addMember('A1', 'alice')

function lastUrl(): string {
  return upstream.requests.at(-1)?.url ?? ''
}

t.test(
  'an album token is pinned to its album whatever it sends as album/inbox, and other spellings are refused',
  async (t) => {
    const tampering = [
      'album=A1',
      'album=A1&album=A1',
      'album=A1&limit=3',
      'inbox=false',
      'inbox=false&album=A1',
    ]
    for (const q of tampering) {
      const res = await send(gate.url, { path: `/api/studies?${q}`, headers: bearer(reader.token) })
      t.equal(res.status, 200, q)
      const forwarded = new URL(`http://x${lastUrl()}`).searchParams
      t.same(forwarded.getAll('album'), ['A1'], `${q}: exactly one album, the token's`)
      t.notMatch(lastUrl(), /inbox/, `${q}: no client inbox survives`)
    }
    for (const q of [
      'ALBUM=A1',
      'Album=A1&limit=3',
      '%61lbum=A1',
      'alb%75m=A1&limit=3',
      'INBOX=false&album=A1',
    ]) {
      const before = upstream.requests.length
      const res = await send(gate.url, { path: `/api/studies?${q}`, headers: bearer(reader.token) })
      t.equal(res.status, 400, `${q}: refused as ambiguous`)
      t.equal(upstream.requests.length, before, `${q}: not forwarded`)
    }
  },
)

t.test(
  'an album token asking for another album gets 404, for the inbox 403, and nothing is forwarded',
  async (t) => {
    const cases = ALBUM_TOKEN_REFUSALS
    for (const [q, status] of cases) {
      const before = upstream.requests.length
      const res = await send(gate.url, { path: `/api/studies?${q}`, headers: bearer(reader.token) })
      t.equal(res.status, status, q)
      t.equal(upstream.requests.length, before, `${q}: not forwarded`)
    }
    const other = await send(gate.url, { path: '/api/studies?album=A2', headers: bearer(reader.token) })
    const unknown = await send(gate.url, { path: '/api/studies/9.9.9', headers: bearer('tg_x') })
    t.equal(
      (other.json() as { error: string }).error,
      'not_found',
      'another album reads like any missing resource',
    )
    t.ok(unknown)
  },
)

t.test(
  'a user token reaches an album it belongs to, its inbox, or everything; not other albums',
  async (t) => {
    let res = await send(gate.url, { path: '/api/studies?album=A1&limit=2', headers: bearer(alice.token) })
    t.equal(res.status, 200)
    t.equal(lastUrl(), '/dicom-web/studies?limit=2&album=A1')
    t.equal(upstream.requests.at(-1)?.headers['x-tokengate-scope'], 'album:A1')

    res = await send(gate.url, { path: '/api/studies?inbox=true', headers: bearer(alice.token) })
    t.equal(res.status, 200)
    t.equal(lastUrl(), '/dicom-web/studies?inbox=true')
    t.equal(upstream.requests.at(-1)?.headers['x-tokengate-scope'], 'inbox')

    res = await send(gate.url, { path: '/api/studies', headers: bearer(alice.token) })
    t.equal(res.status, 200)
    t.equal(lastUrl(), '/dicom-web/studies')
    t.equal(upstream.requests.at(-1)?.headers['x-tokengate-scope'], 'user')

    res = await send(gate.url, { path: '/api/studies?album=A2', headers: bearer(alice.token) })
    t.equal(res.status, 404, 'not a member')
    res = await send(gate.url, { path: '/api/studies?album=A1&inbox=true', headers: bearer(alice.token) })
    t.equal(res.status, 400, 'album and inbox together')
    res = await send(gate.url, { path: '/api/studies?album=A1&album=A3', headers: bearer(alice.token) })
    t.equal(res.status, 400, 'two albums')
    res = await send(gate.url, { path: '/api/studies?inbox=maybe', headers: bearer(alice.token) })
    t.equal(res.status, 400, 'inbox must be true or false')
  },
)

t.test('removing a member takes effect at once for a running gate', async (t) => {
  await tokens.addMember('A3', 'alice')
  t.equal((await send(gate.url, { path: '/api/studies?album=A3', headers: bearer(alice.token) })).status, 200)
  await tokens.removeMember('A3', 'alice')
  const status = await probeUntil(
    async () =>
      (await send(gate.url, { path: '/api/studies?album=A3', headers: bearer(alice.token) })).status,
    (s) => s === 404,
  )
  t.equal(status, 404)
})

t.test('permissions follow the method, the zip accept and the appropriate rule', async (t) => {
  const cases: [string, string, string, Record<string, string>, number][] = [
    ['read token reads', 'GET', '/api/studies', {}, 200],
    ['read token cannot STOW', 'POST', '/api/studies', { 'content-type': 'application/dicom' }, 403],
    ['read token cannot delete', 'DELETE', '/api/studies/1.2.3', {}, 403],
    ['read token cannot download a zip', 'GET', '/api/studies/1.2.3', { accept: 'application/zip' }, 403],
    [
      'read token cannot download a zip by query',
      'GET',
      '/api/studies/1.2.3?accept=application%2Fzip',
      {},
      403,
    ],
    ['read token cannot add a study to an album', 'PUT', '/api/studies/1.2.3', {}, 403],
  ]
  for (const [name, method, path, headers, status] of cases) {
    const res = await send(gate.url, {
      method,
      path,
      headers: { ...headers, ...bearer(reader.token) },
      body: '',
    })
    t.equal(res.status, status, name)
    if (status === 403) {
      t.equal((res.json() as { error: string }).error, 'insufficient_scope', `${name}: error`)
      t.match(res.headers['www-authenticate'], /error="insufficient_scope"/, `${name}: RFC 6750 challenge`)
    }
  }
  const allowed: [string, string, string, string, Record<string, string>][] = [
    ['write token can STOW', writer.token, 'POST', '/api/studies', { 'content-type': 'application/dicom' }],
    [
      'download token can download a zip',
      downloader.token,
      'GET',
      '/api/studies/1.2.3',
      { accept: 'application/zip' },
    ],
    ['appropriate token can add a study', appropriator.token, 'PUT', '/api/studies/1.2.3', {}],
    ['user token can do anything in its album', alice.token, 'DELETE', '/api/studies/1.2.3?album=A1', {}],
  ]
  for (const [name, token, method, path, headers] of allowed) {
    // GET and DELETE carry no body (one would be refused: body_not_allowed).
    const body = method === 'POST' || method === 'PUT' ? { body: 'x' } : {}
    const res = await send(gate.url, { method, path, headers: { ...headers, ...bearer(token) }, ...body })
    t.equal(res.status, 200, name)
    t.equal(upstream.requests.at(-1)?.method, method, `${name}: forwarded`)
  }
})

/** Send `path` with the read-only token: refused with `status` (and `error`), nothing forwarded. */
async function refused(t: Test, path: string, status: number, error?: string): Promise<void> {
  const before = upstream.requests.length
  const res = await send(gate.url, { path, headers: bearer(reader.token) })
  t.equal(res.status, status, `${path}: ${status}`)
  if (error) t.equal((res.json() as { error: string }).error, error, `${path}: ${error}`)
  t.equal(upstream.requests.length, before, `${path}: not forwarded`)
}

/** The forwarded query as three common parsers read it: WHATWG, `;`-splitting (old CGI), and `qs`. */
function readsAsScope(url: string): string[] {
  const q = url.indexOf('?')
  const query = q === -1 ? '' : url.slice(q + 1)
  const seen: string[] = []
  for (const [k] of new URLSearchParams(query)) seen.push(k)
  for (const part of query.split(/[;&]/)) {
    const name = part.split('=')[0] ?? ''
    try {
      seen.push(decodeURIComponent(decodeURIComponent(name.replace(/\+/g, ' '))))
    } catch {
      seen.push(name)
    }
  }
  return seen.filter((n) => /^\W*(album|inbox)\W*$/i.test(n.replace(/\[.*$/, '').trim()))
}

t.test(
  'query spellings other parsers read as scope are refused 400 ambiguous_request and never forwarded',
  async (t) => {
    const spellings = SCOPE_SPELLINGS
    for (const q of spellings) await refused(t, `/api/studies?${q}`, 400, 'ambiguous_request')
  },
)

t.test('a raw # in the target is refused, never forwarded with the scope after the fragment', async (t) => {
  for (const path of FRAGMENT_TARGETS) await refused(t, path, 400, 'ambiguous_request')
})

t.test('the upstream receives a query tokengate re-serialised, with exactly the decided scope', async (t) => {
  const cases = CANONICAL_QUERIES
  for (const [q, want] of cases) {
    const res = await send(gate.url, { path: `/api/studies?${q}`, headers: bearer(reader.token) })
    t.equal(res.status, 200, q)
    t.equal(lastUrl(), want, `${q}: canonical target`)
    t.same(readsAsScope(lastUrl()), ['album', 'album'], `${q}: every parser reads one album`)
    t.same(new URLSearchParams(lastUrl().split('?')[1]).getAll('album'), ['A1'])
  }
})

t.test('a zip asked for by any spelling of accept needs download, or is refused as ambiguous', async (t) => {
  const spellings = ACCEPT_SPELLINGS
  for (const q of spellings) await refused(t, `/api/studies/1.2.3?${q}`, 400, 'ambiguous_request')
  const needsDownload = [
    'accept=application%2Fzip',
    'accept=APPLICATION/ZIP',
    'accept=application%2Fx-zip-compressed',
    'accept=multipart/related&accept=application/zip',
  ]
  for (const q of needsDownload) {
    const res = await send(gate.url, { path: `/api/studies/1.2.3?${q}`, headers: bearer(reader.token) })
    t.equal(res.status, 403, `${q}: a read-only token cannot download`)
    const ok = await send(gate.url, { path: `/api/studies/1.2.3?${q}`, headers: bearer(downloader.token) })
    t.equal(ok.status, 200, `${q}: a download token can`)
  }
})

t.test('path segments other servers read as dot segments are refused and never forwarded', async (t) => {
  const paths = DOT_SEGMENT_PATHS
  for (const path of paths) await refused(t, path, 400, 'ambiguous_request')
})

t.test(
  'an encoded path reaches the upstream re-encoded, and rules match what the upstream reads',
  async (t) => {
    let res = await send(gate.url, { path: '/api/%73tudies/1.2.3', headers: bearer(reader.token) })
    t.equal(res.status, 200)
    t.equal(lastUrl(), '/dicom-web/studies/1.2.3?album=A1')
    const before = upstream.requests.length
    res = await send(gate.url, {
      method: 'DELETE',
      path: '/api/%73tudies/1.2.3',
      headers: bearer(reader.token),
    })
    t.equal(res.status, 403, 'DELETE spelled with an escape still needs write')
    t.equal(upstream.requests.length, before)
  },
)
