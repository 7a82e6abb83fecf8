// KHEOPS self-service album tokens against a real Orthanc (scoping: studies) and a real
// redis-server: a user token creates an album token for an album its user belongs to and uses it
// (it sees exactly that album), cannot create one for another album nor widen its permissions nor
// outlive itself; an album token cannot mint; a user lists and revokes its own tokens only; every
// change is audited as the user and the token that asked.
import t from 'tap'
import type { AuditEvent } from '../../src/admin/audit.js'
import type { CreatedToken, TokenInfo } from '../../src/admin/tokens.js'
import { makeKeys } from '../../src/token/keys.js'
import { StudySets } from '../../src/token/study-sets.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startOrthanc } from '../helpers/orthanc.js'
import { startRedis } from '../helpers/redis.js'
import { eventuallyStatus } from '../helpers/topology.js'

const redis = await startRedis()
t.teardown(redis.stop)
const orthanc = await startOrthanc()
t.teardown(orthanc.stop)
const inA = await orthanc.createStudy({ patientName: 'SELF^A', patientId: 'SA1' })
const inB = await orthanc.createStudy({ patientName: 'SELF^B', patientId: 'SB1' })
const sets = new StudySets(redis.client, makeKeys('tg:'))
await sets.add({ kind: 'album', album: 'A' }, [inA.studyInstanceUID])
await sets.add({ kind: 'album', album: 'B' }, [inB.studyInstanceUID])

const gate = await startGate({
  redisUrl: redis.url,
  upstream: orthanc.dicomWebUrl,
  config: { scoping: 'studies', selfService: { enabled: true } },
})
t.teardown(gate.stop)
const tokens = admin(redis.client)
const alice = await tokens.create({ kind: 'user', user: 'alice', expiresIn: '10d' })
const bob = await tokens.create({ kind: 'user', user: 'bob', expiresIn: '10d' })
await tokens.addMember('A', 'alice')
await tokens.addMember('B', 'bob')

const json = { 'content-type': 'application/json' }

function mint(secret: string, body: unknown) {
  return send(gate.url, {
    method: 'POST',
    path: '/api/tokens',
    headers: { ...json, ...bearer(secret) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

const STUDY = '0020000D'
function studyUids(body: unknown): string[] {
  return (body as Record<string, { Value?: string[] }>[]).map((s) => s[STUDY]?.Value?.[0] ?? '')
}

let viewer: CreatedToken

t.test(
  'a user token member of album A creates a read token for A and it works against Orthanc',
  async (t) => {
    const res = await mint(alice.token, {
      album: 'A',
      perms: ['read'],
      expiresIn: '1d',
      description: 'viewer',
    })
    t.equal(res.status, 201, res.text)
    t.equal(res.headers['cache-control'], 'no-store')
    viewer = res.json() as CreatedToken
    t.match(viewer, { kind: 'album', album: 'A', user: 'alice', perms: ['read'], description: 'viewer' })
    t.match(viewer.token, /^tg_/, 'the secret is returned, once')
    const life = Date.parse(viewer.expiresAt) - Date.now()
    t.ok(life > 23 * 3_600_000 && life <= 24 * 3_600_000)

    const studies = await send(gate.url, {
      path: '/api/studies',
      headers: { accept: 'application/dicom+json', ...bearer(viewer.token) },
    })
    t.equal(studies.status, 200)
    t.same(studyUids(studies.json()), [inA.studyInstanceUID], 'exactly album A')
    const other = await send(gate.url, {
      path: `/api/studies/${inB.studyInstanceUID}/metadata`,
      headers: bearer(viewer.token),
    })
    t.equal(other.status, 404, "album B's study stays out of reach")
    const write = await send(gate.url, {
      method: 'POST',
      path: '/api/studies',
      headers: { 'content-type': 'application/dicom', ...bearer(viewer.token) },
      body: 'x',
    })
    t.equal(write.status, 403, 'read only')
  },
)

t.test('no album token for an album the user is not in, and nothing is created', async (t) => {
  const before = await tokens.list({ user: 'alice' })
  const res = await mint(alice.token, { album: 'B', perms: 'read', expiresIn: '1d' })
  t.equal(res.status, 404)
  t.same(res.json(), { error: 'not_found', reason: 'no such resource' })
  t.equal((await tokens.list({ user: 'alice' })).length, before.length)
})

t.test("no permission wider than the user token's", async (t) => {
  // A user token restricted to read (as an administrator may narrow one).
  const narrow = await tokens.create({ kind: 'user', user: 'alice', expiresIn: '1d' })
  await redis.client.hset(`tg:token:${(await redis.client.get(`tg:id:${narrow.id}`)) ?? ''}`, 'perms', 'read')
  const res = await mint(narrow.token, { album: 'A', perms: 'read,write', expiresIn: '1h' })
  t.equal(res.status, 403)
  t.equal((res.json() as { error: string }).error, 'insufficient_scope')
  t.match(res.text, /wider than those of the user token/)
  t.equal(
    (await mint(narrow.token, { album: 'A', perms: 'read', expiresIn: '1h' })).status,
    201,
    'read alone is fine',
  )
})

t.test('an album token can never mint, list or revoke tokens', async (t) => {
  const res = await mint(viewer.token, { album: 'A', perms: 'read', expiresIn: '1h' })
  t.equal(res.status, 403)
  t.match(res.text, /only a user token/)
  const list = await send(gate.url, { path: '/api/tokens', headers: bearer(viewer.token) })
  t.equal(list.status, 403)
  const revoke = await send(gate.url, {
    method: 'POST',
    path: `/api/tokens/${viewer.id}/revoke`,
    headers: bearer(viewer.token),
  })
  t.equal(revoke.status, 403)
})

t.test('expiry is bounded by selfService.maxLifetime and by the user token itself', async (t) => {
  const tooLong = await mint(alice.token, { album: 'A', perms: 'read', expiresIn: '31d' })
  t.equal(tooLong.status, 400)
  t.match(tooLong.text, /selfService.maxLifetime/)
  const pastUser = await mint(alice.token, { album: 'A', perms: 'read', expiresIn: '11d' })
  t.equal(pastUser.status, 400, 'an album token never outlives the user token that made it')
  const none = await mint(alice.token, { album: 'A', perms: 'read' })
  t.equal(none.status, 400, 'an expiry is mandatory')
})

t.test('malformed and oversized bodies are refused', async (t) => {
  const cases: [string, unknown, Record<string, string>, number][] = [
    ['not JSON', '{album', json, 400],
    ['an array', '[]', json, 400],
    ['an unknown field', { album: 'A', perms: 'read', expiresIn: '1h', kind: 'user' }, json, 400],
    ['a number as album', { album: 7, perms: 'read', expiresIn: '1h' }, json, 400],
    ['an unknown permission', { album: 'A', perms: 'admin', expiresIn: '1h' }, json, 400],
    ['a form body', 'album=A', { 'content-type': 'application/x-www-form-urlencoded' }, 400],
    ['20 KB', { album: 'A', perms: 'read', expiresIn: '1h', description: 'x'.repeat(20_000) }, json, 413],
  ]
  for (const [name, body, headers, status] of cases) {
    const res = await send(gate.url, {
      method: 'POST',
      path: '/api/tokens',
      headers: { ...headers, ...bearer(alice.token) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
    t.equal(res.status, status, name)
    t.notMatch(res.text, alice.token, `${name}: no secret echoed`)
  }
  const anonymous = await send(gate.url, { method: 'POST', path: '/api/tokens', headers: json, body: '{}' })
  t.equal(anonymous.status, 401, 'no credential: 401')
})

t.test("a user lists its own tokens, never a secret, never another user's", async (t) => {
  const res = await send(gate.url, { path: '/api/tokens', headers: bearer(alice.token) })
  t.equal(res.status, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const list = res.json() as TokenInfo[]
  t.ok(
    list.some((i) => i.id === viewer.id),
    'the album token it made',
  )
  t.ok(list.every((i) => i.user === 'alice'))
  t.notOk(list.some((i) => i.id === bob.id))
  t.notMatch(res.text, viewer.token.slice(3), 'no secret')
  t.notOk(list.some((i) => 'token' in i))
})

t.test('a user revokes one of its tokens; another user gets 404 for it', async (t) => {
  const byBob = await send(gate.url, {
    method: 'POST',
    path: `/api/tokens/${viewer.id}/revoke`,
    headers: bearer(bob.token),
  })
  t.equal(byBob.status, 404, "not bob's")
  const ghost = await send(gate.url, {
    method: 'POST',
    path: '/api/tokens/tok_nothing/revoke',
    headers: bearer(alice.token),
  })
  t.equal(ghost.status, 404)
  t.equal(await eventuallyStatus(gate, viewer.token, 200), 200, 'still working')

  const res = await send(gate.url, {
    method: 'POST',
    path: `/api/tokens/${viewer.id}/revoke`,
    headers: bearer(alice.token),
  })
  t.equal(res.status, 200)
  t.match(res.json(), { id: viewer.id, status: 'revoked' })
  t.equal(await eventuallyStatus(gate, viewer.token, 401), 401, 'refused through the proxy')
})

t.test('self-service changes are audited as the user and the token that asked, never a secret', async (t) => {
  const events = await tokens.audit.list({ limit: 1000 })
  const created = events.find((e: AuditEvent) => e.op === 'token.create' && e.tokenId === viewer.id)
  t.match(created, { actor: 'user:alice', client: `token:${alice.id}`, album: 'A', perms: ['read'] })
  const revoked = events.find((e: AuditEvent) => e.op === 'token.revoke' && e.tokenId === viewer.id)
  t.match(revoked, { actor: 'user:alice', client: `token:${alice.id}` })
  t.notMatch(JSON.stringify(events), viewer.token.slice(3))
})

t.test(
  'without selfService.enabled, <mount>/tokens is an ordinary path (404 on a DICOMweb mount)',
  async (t) => {
    const plain = await startGate({
      redisUrl: redis.url,
      upstream: orthanc.dicomWebUrl,
      config: { scoping: 'studies' },
    })
    t.teardown(plain.stop)
    const res = await send(plain.url, {
      method: 'POST',
      path: '/api/tokens',
      headers: { ...json, ...bearer(alice.token) },
      body: JSON.stringify({ album: 'A', perms: 'read', expiresIn: '1h' }),
    })
    t.equal(res.status, 404)
  },
)
