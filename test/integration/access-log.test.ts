// The access log: one JSON line per request with the fields operators need, and — over every kind
// of request the suite makes (each credential form, every refusal, upstream failures, a secret
// misplaced in the query or the request id) — no secret anywhere in the log output.
import { request } from 'node:http'
import t from 'tap'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { basic, bearer, send } from '../helpers/http.js'
import { freePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

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
      { path: '/api', upstream: `${upstream.url}/dicom-web`, wado: `${upstream.url}/wado` },
      { path: '/any', upstream: upstream.url, rules: [{ methods: '*', path: '/**', action: 'read' }] },
      { path: '/down', upstream: `http://127.0.0.1:${closedPort}` },
    ],
    forward: { headersTimeout: 200 },
    log: { level: 'debug' },
  },
})
t.teardown(gate.stop)
const tokens = admin(redis.client)
const reader = await tokens.create({
  kind: 'album',
  album: 'A1',
  user: 'owner',
  perms: 'read',
  expiresIn: '1h',
})
const writer = await tokens.create({ kind: 'album', album: 'A1', perms: 'read,write', expiresIn: '1h' })
const user = await tokens.create({ kind: 'user', user: 'alice', expiresIn: '1h' })
const revoked = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '1h' })
const disabled = await tokens.create({ kind: 'album', album: 'A1', perms: 'read', expiresIn: '1h' })
await tokens.addMember('A1', 'alice')
const secrets = [reader.token, writer.token, user.token, revoked.token, disabled.token]
const legacy = 'legacy-secret-never-issued-0123456789'
const mistyped = `${reader.token.slice(0, -1)}${reader.token.endsWith('A') ? 'B' : 'A'}`

t.test('every kind of request, then no secret anywhere in the log output', async (t) => {
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(reader.token) })).status, 200)
  await tokens.revoke(revoked.id)
  await tokens.disable(disabled.id)
  const cases: [string, Parameters<typeof send>[1]][] = [
    ['bearer', { path: '/api/studies?limit=1', headers: bearer(reader.token) }],
    ['basic', { path: '/api/studies', headers: basic(reader.token) }],
    ['link', { path: `/api/link/${reader.token}/studies/1.2.3/metadata` }],
    ['link wado', { path: `/api/link/${reader.token}/wado?requestType=WADO&studyUID=1` }],
    ['link, encoded', { path: `/api/link/${encodeURIComponent(reader.token)}/studies` }],
    ['link, bad escape', { path: `/api/link/${reader.token}%zz/studies` }],
    ['link, mistyped', { path: `/api/link/${mistyped}/studies` }],
    ['user album', { path: '/api/studies?album=A1', headers: bearer(user.token) }],
    ['user inbox', { path: '/api/studies?inbox=true', headers: bearer(user.token) }],
    ['not a member', { path: '/api/studies?album=ZZ', headers: bearer(user.token) }],
    ['other album', { path: '/api/studies?album=A2', headers: bearer(reader.token) }],
    ['inbox refused', { path: '/api/studies?inbox=true', headers: bearer(reader.token) }],
    ['write refused', { method: 'POST', path: '/api/studies', headers: bearer(reader.token), body: 'x' }],
    ['stow', { method: 'POST', path: '/api/studies', headers: bearer(writer.token), body: 'dicom' }],
    ['revoked', { path: '/api/studies', headers: bearer(revoked.token) }],
    ['disabled', { path: '/api/studies', headers: bearer(disabled.token) }],
    ['legacy unknown', { path: '/api/studies', headers: bearer(legacy) }],
    ['mistyped', { path: '/api/studies', headers: bearer(mistyped) }],
    ['two credentials', { path: `/api/link/${writer.token}/studies`, headers: bearer(reader.token) }],
    ['bearer with a space', { path: '/api/studies', headers: { authorization: `Bearer ${reader.token} x` } }],
    ['unknown scheme', { path: '/api/studies', headers: { authorization: `Token ${reader.token}` } }],
    [
      'basic without colon',
      {
        path: '/api/studies',
        headers: { authorization: `Basic ${Buffer.from(reader.token).toString('base64')}` },
      },
    ],
    [
      'secret in the query',
      { path: `/api/studies?access_token=${reader.token}`, headers: bearer(reader.token) },
    ],
    [
      'secret as request id',
      { path: '/api/studies', headers: { ...bearer(reader.token), 'x-request-id': reader.token } },
    ],
    ['dot segments', { path: `/api/link/${reader.token}/../../system` }],
    ['no rule', { path: `/api/link/${reader.token}/tools/find` }],
    ['no mount', { path: `/nowhere/link/${reader.token}/x` }],
    ['upstream refused', { path: '/down/studies', headers: bearer(reader.token) }],
    ['upstream slow', { path: `/any/link/${reader.token}/slow-headers/1000` }],
  ]
  for (const [name, req] of cases) {
    const res = await send(gate.url, req)
    t.ok(res.status > 0, `${name}: ${res.status}`)
    for (const s of secrets) t.notMatch(res.text, s, `${name}: the answer never echoes a secret`)
  }
  // An upstream that dies mid-body, and a client that goes away.
  await new Promise<void>((resolve) => {
    const r = request(`${gate.url}/any/link/${reader.token}/abort-mid`, (res) => {
      res.on('data', () => {})
      res.on('close', () => resolve())
    })
    r.on('error', () => resolve())
    r.end()
  })
  await new Promise<void>((resolve) => {
    const r = request(`${gate.url}/any/link/${reader.token}/hang`)
    r.on('error', () => resolve())
    r.end()
    setTimeout(() => {
      r.destroy()
      resolve()
    }, 50)
  })
  // The line of the request whose client went away is written when tokengate sees it go.
  await waitFor('a line for every request', () => accessLog(gate).length >= cases.length + 2)
  const all = gate.logs.join('\n')
  t.equal(accessLog(gate).length, cases.length + 2, 'one line per request')
  for (const s of [...secrets, legacy, mistyped]) t.notMatch(all, s, 'no secret in any log line')
  for (const s of secrets) t.notMatch(all, encodeURIComponent(s), 'not even percent-encoded')
  t.notMatch(all, /access_token/, 'query strings are not logged')
})

t.test('an access-log line carries the fields operators need', async (t) => {
  const res = await send(gate.url, {
    path: `/api/link/${reader.token}/studies?PatientName=DOE^JANE`,
    headers: { 'x-request-id': 'trace-42' },
  })
  t.equal(res.status, 200)
  t.equal(res.headers['x-request-id'], 'trace-42', 'the request id comes back')
  t.equal(upstream.requests.at(-1)?.headers['x-request-id'], 'trace-42', 'and goes upstream')
  const line = accessLog(gate).find((l) => l.requestId === 'trace-42')
  t.ok(line)
  t.match(line, {
    time: String,
    method: 'GET',
    path: '/api/link/<redacted>/studies',
    status: 200,
    mount: '/api',
    via: 'link',
    tokenId: reader.id,
    user: 'owner',
    scope: 'album:A1',
    reason: 'ok',
    cache: 'hit',
    bytesIn: Number,
    bytesOut: Number,
    authMs: Number,
    upstreamMs: Number,
    totalMs: Number,
    remote: '127.0.0.1',
  })
  t.notMatch(JSON.stringify(line), /DOE/, 'no patient data from the query')
  t.ok((line?.bytesOut as number) > 0)
})

t.test('a request without an id gets a generated one; a secret-looking id is replaced', async (t) => {
  const plain = await send(gate.url, { path: '/api/studies', headers: bearer(reader.token) })
  t.match(plain.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  const sneaky = await send(gate.url, {
    path: '/api/studies',
    headers: { ...bearer(reader.token), 'x-request-id': reader.token },
  })
  t.not(sneaky.headers['x-request-id'], reader.token)
  t.match(sneaky.headers['x-request-id'], /^[0-9a-f-]{36}$/)
})

t.test('log.access: false leaves lifecycle lines but no request lines', async (t) => {
  const quiet = await startGate({
    redisUrl: redis.url,
    upstream: `${upstream.url}/dicom-web`,
    config: { log: { level: 'info', access: false } },
  })
  t.teardown(quiet.stop)
  t.equal((await send(quiet.url, { path: '/api/studies', headers: bearer(reader.token) })).status, 200)
  t.equal(accessLog(quiet).length, 0)
  t.ok(quiet.logs.some((l) => l.includes('tokengate listening')))
})

t.test(
  'every kind of answer carries the request id (forwarded, refused, failed upstream, local)',
  async (t) => {
    const cases: [string, Parameters<typeof send>[1]][] = [
      ['forwarded, rewritten', { path: '/api/studies', headers: bearer(reader.token) }],
      ['forwarded, passed through', { path: '/api/studies/1.2.3/rendered', headers: bearer(reader.token) }],
      ['forwarded, link', { path: `/api/link/${reader.token}/studies` }],
      ['401', { path: '/api/studies' }],
      ['403', { method: 'DELETE', path: '/api/studies/1.2.3', headers: bearer(reader.token) }],
      ['404 no mount', { path: '/nowhere' }],
      ['502 upstream down', { path: '/down/studies', headers: bearer(reader.token) }],
      ['health', { path: '/healthz' }],
    ]
    for (const [name, req] of cases) {
      const id = `rid-${name.replace(/[^a-z0-9]/g, '-')}`
      const res = await send(gate.url, { ...req, headers: { ...req.headers, 'x-request-id': id } })
      t.equal(res.headers['x-request-id'], id, `${name} (${res.status})`)
    }
    // A request without one gets a fresh id, also on a forwarded answer.
    const res = await send(gate.url, { path: '/api/studies', headers: bearer(reader.token) })
    t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  },
)
