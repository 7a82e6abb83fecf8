// The STOW-RS part guard end to end (scoping: studies), against a recording upstream: a large
// store of a study the album holds reaches the upstream byte for byte (streamed, not buffered);
// a part whose study tokengate cannot place (the archive's answer is no DICOM JSON) is answered
// 502 and the upload is cut before any byte of that part leaves tokengate; an unreadable body is
// a 400 and the upstream sees no request at all.
import { createHash } from 'node:crypto'
import t from 'tap'
import { makeKeys } from '../../src/token/keys.js'
import { StudySets } from '../../src/token/study-sets.js'
import { instance, part10, stowBody, uid } from '../helpers/dicom.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const gate = await startGate({ redisUrl: redis.url, upstream: upstream.url, config: { scoping: 'studies' } })
t.teardown(gate.stop)

const OURS = '1.2.826.0.1.3680043.8.1'
const UNKNOWN = '1.2.826.0.1.3680043.8.2'
await new StudySets(redis.client, makeKeys('tg:')).add({ kind: 'album', album: 'a' }, [OURS])
const writer = await admin(redis.client).create({
  kind: 'album',
  album: 'a',
  perms: 'read,write',
  expiresIn: '1h',
})

const post = (body: Buffer, type: string) =>
  send(gate.url, {
    method: 'POST',
    path: '/api/studies',
    headers: { ...bearer(writer.token), 'content-type': type, accept: 'application/dicom+json' },
    body,
  })

t.test('a 20 MB store of a study the album holds reaches the upstream byte for byte', async (t) => {
  const big = part10({
    elements: [
      uid(0x00080018, '2.25.1'),
      uid(0x0020000d, OURS),
      { tag: 0x7fe00010, vr: 'OB', value: Buffer.alloc(20 * 1024 * 1024, 0x2d) },
    ],
  })
  const { body, type } = stowBody([big, instance(OURS, '2.25.2')])
  const before = upstream.requests.length
  const res = await post(body, type)
  t.equal(res.status, 200, res.text)
  const seen = upstream.requests.slice(before).find((r) => r.method === 'POST')
  t.equal(seen?.bodyBytes, body.length)
  t.equal(seen?.bodySha256, createHash('sha256').update(body).digest('hex'), 'the same bytes')
})

t.test('a part whose study cannot be placed is cut before it leaves tokengate: 502', async (t) => {
  const first = instance(OURS, '2.25.3')
  const { body, type } = stowBody([first, instance(UNKNOWN, '2.25.4')])
  const before = upstream.requests.length
  const res = await post(body, type)
  t.equal(res.status, 502, 'the archive answered its instance search with no DICOM JSON array')
  const seen = upstream.requests.slice(before)
  t.ok(
    seen.some((r) => r.method === 'GET' && r.url.startsWith(`/studies/${UNKNOWN}/instances`)),
    'asked the archive',
  )
  const store = seen.find((r) => r.method === 'POST')
  t.ok(!store || store.bodyBytes < body.indexOf(Buffer.from(UNKNOWN)), 'nothing of the second part')
  t.notOk(store?.bodyComplete, 'the upload was cut')
})

t.test('an unreadable STOW body is refused before the upstream is asked anything', async (t) => {
  const before = upstream.requests.length
  const { body, type } = stowBody([Buffer.from('not DICOM at all')])
  const res = await post(body, type)
  t.equal(res.status, 400)
  t.same(res.json(), {
    error: 'invalid_request',
    reason:
      'every STOW-RS part must be a DICOM Part 10 file in explicit or implicit VR little endian (or an encapsulated syntax) with one well-formed StudyInstanceUID',
  })
  const late = upstream.requests.slice(before)
  t.ok(
    late.every((r) => r.bodyBytes === 0),
    'no byte of the body went upstream',
  )
  const noBoundary = await post(body, 'multipart/related; type="application/dicom"')
  t.equal(noBoundary.status, 400)
  // A compressed body is not the bytes the guard reads (the archive may inflate it).
  const ok = stowBody([instance(OURS, '2.25.9')])
  const gzip = await send(gate.url, {
    method: 'POST',
    path: '/api/studies',
    headers: { ...bearer(writer.token), 'content-type': ok.type, 'content-encoding': 'gzip' },
    body: ok.body,
  })
  t.equal(gzip.status, 400)
  t.ok(
    upstream.requests.slice(before).every((r) => r.bodyBytes === 0),
    'still nothing upstream',
  )
})
