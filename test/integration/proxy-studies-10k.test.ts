// A 10,000-study album over a real Orthanc (scoping: studies): 9,997 synthetic UIDs in the Redis
// set with the 3 studies Orthanc really holds among them. The narrowed StudyInstanceUID list is
// far beyond what Orthanc accepts in one request, so tokengate must split it; the merged answer
// must hold exactly the real studies and honour limit/offset over the whole album.
import t from 'tap'
import { makeKeys } from '../../src/token/keys.js'
import { StudySets } from '../../src/token/study-sets.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startOrthanc } from '../helpers/orthanc.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(redis.stop)
const orthanc = await startOrthanc()
t.teardown(orthanc.stop)

const real = [
  await orthanc.createStudy({ patientName: 'BIG^ONE', patientId: 'PBIG1' }),
  await orthanc.createStudy({ patientName: 'BIG^TWO', patientId: 'PBIG2' }),
  await orthanc.createStudy({ patientName: 'BIG^THREE', patientId: 'PBIG3' }),
]
const outsider = await orthanc.createStudy({ patientName: 'NOT^IN^ALBUM', patientId: 'PBIG4' })
const synthetic = Array.from({ length: 9_997 }, (_, i) => `1.2.826.0.1.3680043.10.${i + 1}`)
const album = [
  ...synthetic.slice(0, 3000),
  real[0]?.studyInstanceUID,
  ...synthetic.slice(3000, 7000),
  real[1]?.studyInstanceUID,
  ...synthetic.slice(7000),
  real[2]?.studyInstanceUID,
] as string[]
await new StudySets(redis.client, makeKeys('tg:')).add({ kind: 'album', album: 'huge' }, album)

const gate = await startGate({
  redisUrl: redis.url,
  upstream: orthanc.dicomWebUrl,
  config: { scoping: 'studies' },
})
t.teardown(gate.stop)
const token = (
  await admin(redis.client).create({ kind: 'album', album: 'huge', perms: 'read', expiresIn: '1h' })
).token

const STUDY = '0020000D'
type Row = Record<string, { Value?: string[] }>
async function uids(path: string, tag = STUDY): Promise<string[]> {
  const res = await send(gate.url, { path: `/api${path}`, headers: bearer(token) })
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text.slice(0, 200)}`)
  return (res.json() as Row[]).map((r) => r[tag]?.Value?.[0] as string)
}

t.test('the album is 10,000 studies and no single Orthanc search can take its UID list', async (t) => {
  t.equal(await redis.client.scard('tg:album:huge:studies'), 10_000)
  const direct = await send(orthanc.url, { path: `/dicom-web/studies?StudyInstanceUID=${album.join(',')}` })
  t.not(direct.status, 200, `Orthanc refuses a ${album.join(',').length}-character list (${direct.status})`)
})

let full: string[] = []
t.test('a study search through tokengate returns exactly the album studies Orthanc holds', async (t) => {
  full = await uids('/studies')
  t.same([...full].sort(), real.map((s) => s.studyInstanceUID).sort())
  t.notOk(full.includes(outsider.studyInstanceUID))
})

t.test('limit and offset page through the merged result in one order', async (t) => {
  t.same(await uids('/studies?limit=2'), full.slice(0, 2))
  t.same(await uids('/studies?offset=1&limit=1'), full.slice(1, 2))
  t.same(await uids('/studies?offset=2&limit=5'), full.slice(2, 3))
  t.same(await uids('/studies?offset=3'), [])
})

t.test('series and instance searches are narrowed the same way', async (t) => {
  t.same((await uids('/series', '0020000E')).sort(), real.map((s) => s.seriesInstanceUID).sort())
  t.same((await uids('/instances?limit=2', '00080018')).length, 2)
  t.same(await uids(`/studies?StudyInstanceUID=${outsider.studyInstanceUID},${real[1]?.studyInstanceUID}`), [
    real[1]?.studyInstanceUID,
  ])
})
