// scoping: studies against a real Orthanc with its DICOMweb plugin (which knows nothing of
// albums): two albums with different studies and an inbox. An album token sees exactly its album
// as if it were the whole PACS — in study, series and instance searches, metadata, rendered
// images and WADO-URI — and nothing else (404), however it spells a StudyInstanceUID filter; a
// user token sees the union, or the album or inbox it names; STOW-RS adds what it stored.
import t, { type Test } from 'tap'
import { makeKeys } from '../../src/token/keys.js'
import { StudySets } from '../../src/token/study-sets.js'
import { IMPLICIT_LE, instance, stowBody } from '../helpers/dicom.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, type RawResponse, send } from '../helpers/http.js'
import { startOrthanc } from '../helpers/orthanc.js'
import { startRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const orthanc = await startOrthanc()
t.teardown(orthanc.stop)

const a1 = await orthanc.createStudy({ patientName: 'ALPHA^ONE', patientId: 'PA1' })
// A second series in the same study (same patient: Orthanc keys studies by patient + UID).
const a1b = await orthanc.createStudy({ studyInstanceUID: a1.studyInstanceUID, patientId: 'PA1' })
const a2 = await orthanc.createStudy({ patientName: 'ALPHA^TWO', patientId: 'PA2' })
const b1 = await orthanc.createStudy({ patientName: 'BETA^ONE', patientId: 'PB1' })
const i1 = await orthanc.createStudy({ patientName: 'INBOX^ONE', patientId: 'PI1' })
const x1 = await orthanc.createStudy({ patientName: 'NOBODY^S', patientId: 'PX1' })

const sets = new StudySets(redis.client, makeKeys('tg:'))
await sets.add({ kind: 'album', album: 'alpha' }, [a1.studyInstanceUID, a2.studyInstanceUID])
await sets.add({ kind: 'album', album: 'beta' }, [b1.studyInstanceUID])
await sets.add({ kind: 'inbox', user: 'alice' }, [i1.studyInstanceUID])

const gate = await startGate({
  redisUrl: redis.url,
  upstream: orthanc.dicomWebUrl,
  wado: orthanc.wadoUrl,
  mount: { wadoNormalizeQuery: true },
  config: { scoping: 'studies' },
})
t.teardown(gate.stop)
const tokens = admin(redis.client)
const alpha = await tokens.create({ kind: 'album', album: 'alpha', perms: 'read', expiresIn: '1h' })
const beta = await tokens.create({ kind: 'album', album: 'beta', perms: 'read', expiresIn: '1h' })
const alphaWriter = await tokens.create({
  kind: 'album',
  album: 'alpha',
  perms: 'read,write',
  expiresIn: '1h',
})
const betaDownload = await tokens.create({
  kind: 'album',
  album: 'beta',
  perms: 'read,download',
  expiresIn: '1h',
})
const alice = await tokens.create({ kind: 'user', user: 'alice', expiresIn: '1h' })
const bob = await tokens.create({ kind: 'user', user: 'bob', expiresIn: '1h' })
await tokens.addMember('alpha', 'alice')

const STUDY = '0020000D'
const SERIES = '0020000E'
const SOP = '00080018'
type Row = Record<string, { Value?: unknown[] }>

async function get(token: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return send(gate.url, {
    path: `/api${path}`,
    headers: { ...bearer(token), accept: 'application/dicom+json', ...headers },
  })
}

/** The values of one attribute in a QIDO answer, sorted (fails the test when it is no 200 array). */
async function column(t: Test, token: string, path: string, tag = STUDY): Promise<string[]> {
  const res = await get(token, path)
  t.equal(res.status, 200, `${path}: 200`)
  return (res.json() as Row[]).map((r) => String(r[tag]?.Value?.[0])).sort()
}

const sorted = (...uids: string[]) => [...uids].sort()

/** The SOP Instance UIDs Orthanc holds of a study, asked directly (not through the gate). */
async function orthancInstancesOf(study: string): Promise<string[]> {
  const res = await send(orthanc.url, {
    path: `/dicom-web/studies/${study}/instances`,
    headers: { accept: 'application/dicom+json' },
  })
  if (res.status !== 200) return []
  return (res.json() as Row[]).map((r) => String(r[SOP]?.Value?.[0])).sort()
}

t.test('each album token sees exactly its studies in study, series and instance searches', async (t) => {
  t.same(await column(t, alpha.token, '/studies'), sorted(a1.studyInstanceUID, a2.studyInstanceUID))
  t.same(await column(t, beta.token, '/studies'), [b1.studyInstanceUID])
  t.same(
    await column(t, alpha.token, '/series', SERIES),
    sorted(a1.seriesInstanceUID, a1b.seriesInstanceUID, a2.seriesInstanceUID),
  )
  t.same(await column(t, beta.token, '/series', SERIES), [b1.seriesInstanceUID])
  t.same(
    await column(t, alpha.token, '/instances', SOP),
    sorted(a1.sopInstanceUID, a1b.sopInstanceUID, a2.sopInstanceUID),
  )
  t.same(
    await column(t, alpha.token, `/studies/${a1.studyInstanceUID}/series`, SERIES),
    sorted(a1.seriesInstanceUID, a1b.seriesInstanceUID),
  )
  t.same(
    await column(
      t,
      alpha.token,
      `/studies/${a1.studyInstanceUID}/series/${a1.seriesInstanceUID}/instances`,
      SOP,
    ),
    [a1.sopInstanceUID],
  )
  // Other QIDO filters still apply, inside the album.
  t.same(await column(t, alpha.token, '/studies?PatientID=PA2'), [a2.studyInstanceUID])
  t.same(await column(t, alpha.token, '/studies?PatientID=PB1'), [])
})

t.test('nothing of another album or of no album is reachable: every path answers 404', async (t) => {
  for (const s of [b1, x1]) {
    const paths = [
      `/studies/${s.studyInstanceUID}`,
      `/studies/${s.studyInstanceUID}/metadata`,
      `/studies/${s.studyInstanceUID}/series`,
      `/studies/${s.studyInstanceUID}/instances`,
      `/studies/${s.studyInstanceUID}/series/${s.seriesInstanceUID}/metadata`,
      `/studies/${s.studyInstanceUID}/series/${s.seriesInstanceUID}/instances/${s.sopInstanceUID}/rendered`,
      `/studies/${s.studyInstanceUID}/series/${s.seriesInstanceUID}/instances/${s.sopInstanceUID}/frames/1`,
      `/studies/${s.studyInstanceUID}/series/${s.seriesInstanceUID}/instances/${s.sopInstanceUID}/bulk/7fe00010`,
      `/studies/${encodeURIComponent(s.studyInstanceUID).replace('1', '%31')}/metadata`,
      `/wado?requestType=WADO&studyUID=${s.studyInstanceUID}&seriesUID=${s.seriesInstanceUID}&objectUID=${s.sopInstanceUID}&contentType=image%2Fjpeg`,
      `/series/${s.seriesInstanceUID}/metadata`,
      `/instances/${s.sopInstanceUID}`,
    ]
    for (const path of paths) {
      const res = await get(alpha.token, path)
      t.equal(res.status, 404, path)
      t.same(
        res.json(),
        { error: 'not_found', reason: 'no such resource' },
        `${path}: the same answer as an unknown path`,
      )
    }
  }
})

t.test("the album's own studies come through: metadata, rendered, WADO-URI", async (t) => {
  const s = a1
  const meta = await get(alpha.token, `/studies/${s.studyInstanceUID}/metadata`)
  t.equal(meta.status, 200)
  t.equal((meta.json() as Row[]).length, 2, 'both instances of the study')
  const rendered = await get(
    alpha.token,
    `/studies/${s.studyInstanceUID}/series/${s.seriesInstanceUID}/instances/${s.sopInstanceUID}/rendered`,
    {
      accept: 'image/jpeg',
    },
  )
  t.equal(rendered.status, 200)
  t.same([...rendered.body.subarray(0, 2)], [0xff, 0xd8], 'a JPEG')
  const wado = await get(
    alpha.token,
    `/wado?requestType=WADO&studyUID=${s.studyInstanceUID}&seriesUID=${s.seriesInstanceUID}&objectUID=${s.sopInstanceUID}&contentType=image%2Fjpeg`,
  )
  t.equal(wado.status, 200)
})

t.test('a series or instance of another study, under a study of the album, is not served', async (t) => {
  const res = await get(
    alpha.token,
    `/studies/${a1.studyInstanceUID}/series/${b1.seriesInstanceUID}/metadata`,
  )
  t.not(res.status, 200)
  t.notMatch(res.text, b1.sopInstanceUID)
  const inst = await get(
    alpha.token,
    `/studies/${a1.studyInstanceUID}/series/${b1.seriesInstanceUID}/instances/${b1.sopInstanceUID}/rendered`,
  )
  t.not(inst.status, 200)
  // WADO-URI: the album's study with another study's series and instance.
  const wado = await get(
    alpha.token,
    `/wado?requestType=WADO&studyUID=${a1.studyInstanceUID}&seriesUID=${b1.seriesInstanceUID}&objectUID=${b1.sopInstanceUID}`,
  )
  t.not(wado.status, 200)
})

t.test('WADO-URI reads only the exact studyUID; every near-spelling is refused as ambiguous', async (t) => {
  const A = a1.studyInstanceUID
  const foreign = `seriesUID=${b1.seriesInstanceUID}&objectUID=${b1.sopInstanceUID}`
  for (const name of [
    'StudyUID',
    'STUDYUID',
    'studyUID+',
    '%20studyUID',
    '%73tudyUID',
    'studyUID[]',
    '%2573tudyUID',
    'studyuid',
  ]) {
    const res = await get(alpha.token, `/wado?requestType=WADO&${name}=${A}&${foreign}`, { accept: '*/*' })
    t.equal(res.status, 400, name)
    t.equal((res.json() as { error: string }).error, 'ambiguous_request', name)
    t.notMatch(res.text, b1.sopInstanceUID)
  }
  // The same parameter twice is ambiguous too (parsers differ on first or last).
  const twice = await get(
    alpha.token,
    `/wado?requestType=WADO&studyUID=${A}&studyUID=${b1.studyInstanceUID}&objectUID=${b1.sopInstanceUID}`,
  )
  t.equal(twice.status, 400)
})

t.test("WADO-URI: the album's study with another study's instance (no series named) is 404", async (t) => {
  for (const ct of ['application/dicom', 'image/jpeg']) {
    const res = await get(
      alpha.token,
      `/wado?requestType=WADO&studyUID=${a1.studyInstanceUID}&objectUID=${b1.sopInstanceUID}&contentType=${ct}`,
      { accept: '*/*' },
    )
    t.equal(res.status, 404, ct)
    t.same(res.json(), { error: 'not_found', reason: 'no such resource' })
  }
  // The album's own instance by objectUID alone still comes through.
  const own = await get(
    alpha.token,
    `/wado?requestType=WADO&studyUID=${a1.studyInstanceUID}&objectUID=${a1.sopInstanceUID}&contentType=application/dicom`,
    { accept: '*/*' },
  )
  t.equal(own.status, 200)
  t.equal(own.body.toString('latin1', 128, 132), 'DICM')
})

t.test("an upstream 404 is answered with tokengate's own body, never the archive's", async (t) => {
  const missing = `/studies/${a1.studyInstanceUID}/series/1.2.3.4.5/metadata`
  const res = await get(alpha.token, missing)
  t.equal(res.status, 404)
  t.same(res.json(), { error: 'not_found', reason: 'no such resource' })
})

t.test('a tampered StudyInstanceUID filter cannot widen the view, in any spelling', async (t) => {
  const A = a1.studyInstanceUID
  const B = b1.studyInstanceUID
  const cases: [string, string[]][] = [
    [`StudyInstanceUID=${B}`, []],
    [`StudyInstanceUID=${A},${B}`, [A]],
    [`StudyInstanceUID=${A}%2C${B}`, [A]],
    [`StudyInstanceUID=${A}%5C${B}`, [A]],
    [`StudyInstanceUID=${A}&StudyInstanceUID=${B}`, [A]],
    [`StudyInstanceUID=${B}&StudyInstanceUID=${A}`, [A]],
    [`0020000D=${B}`, []],
    [`StudyInstanceUID=${A}&0020000D=${B}`, [A]],
    [`StudyInstanceUID=*`, sorted(A, a2.studyInstanceUID)],
    [`StudyInstanceUID=`, sorted(A, a2.studyInstanceUID)],
    [`StudyInstanceUID=${x1.studyInstanceUID}&album=beta`, []],
  ]
  for (const [query, want] of cases) {
    const res = await get(alpha.token, `/studies?${query}`)
    if (query.includes('album=beta')) {
      t.equal(res.status, 404, `${query}: another album is refused`)
      continue
    }
    t.equal(res.status, 200, query)
    t.same((res.json() as Row[]).map((r) => r[STUDY]?.Value?.[0]).sort(), want, query)
  }
  // Other spellings of the name are refused before any lookup (rewrite/canonical-query.ts).
  for (const query of [
    `studyinstanceuid=${B}`,
    `STUDYINSTANCEUID=${B}`,
    `0020000d=${A},${B}`,
    `%53tudyInstanceUID=${B}`,
    // Orthanc reads these tag spellings as StudyInstanceUID too.
    `0020,000D=${B}`,
    `0020-000D=${B}`,
  ]) {
    const res = await get(alpha.token, `/studies?${query}`)
    t.notMatch(res.text, B, `${query}: the foreign study is not listed`)
    t.equal(res.status, 400, `${query}: ambiguous`)
  }
  // Under a study path the path's study pins the search.
  t.same(await column(t, alpha.token, `/studies/${A}/series?StudyInstanceUID=${B}`, SERIES), [])
  t.same(await column(t, alpha.token, `/series?StudyInstanceUID=${B}`, SERIES), [])
  t.same(await column(t, alpha.token, `/instances?0020000D=${B}`, SOP), [])
})

t.test('a user token sees the union, or the album or inbox it names', async (t) => {
  const union = sorted(a1.studyInstanceUID, a2.studyInstanceUID, i1.studyInstanceUID)
  t.same(await column(t, alice.token, '/studies'), union)
  t.same(
    await column(t, alice.token, '/studies?album=alpha'),
    sorted(a1.studyInstanceUID, a2.studyInstanceUID),
  )
  t.same(await column(t, alice.token, '/studies?inbox=true'), [i1.studyInstanceUID])
  t.equal(
    (await get(alice.token, `/studies/${i1.studyInstanceUID}/metadata`)).status,
    200,
    'the inbox study, with no scope named',
  )
  t.equal(
    (await get(alice.token, `/studies/${i1.studyInstanceUID}/metadata?album=alpha`)).status,
    404,
    'not in the album named',
  )
  t.equal((await get(alice.token, '/studies?album=beta')).status, 404, 'not a member of beta')
  t.equal((await get(alice.token, `/studies/${b1.studyInstanceUID}/metadata`)).status, 404)
  t.same(await column(t, bob.token, '/studies'), [], 'no albums and an empty inbox: an empty PACS')
})

t.test('membership and study-set changes reach the gate at once', async (t) => {
  // Each change is a message on another socket: allowed a moment, far less than the cache's TTL
  // (30 s); 10 s, since each probe is a request to Orthanc, slow on a loaded machine.
  const soon = { timeoutMs: 10_000 }
  await tokens.addMember('beta', 'alice')
  await waitFor(
    'the membership to reach the gate',
    async () => (await get(alice.token, '/studies?album=beta')).status === 200,
    soon,
  )
  t.same(await column(t, alice.token, '/studies?album=beta'), [b1.studyInstanceUID])
  await sets.remove({ kind: 'album', album: 'beta' }, [b1.studyInstanceUID])
  await waitFor(
    'the removal to reach the gate',
    async () => (await get(beta.token, `/studies/${b1.studyInstanceUID}/metadata`)).status === 404,
    soon,
  )
  t.equal((await get(beta.token, `/studies/${b1.studyInstanceUID}/metadata`)).status, 404, 'removed: 404')
  await sets.add({ kind: 'album', album: 'beta' }, [b1.studyInstanceUID])
  await waitFor(
    'the addition to reach the gate',
    async () => (await get(beta.token, `/studies/${b1.studyInstanceUID}/metadata`)).status === 200,
    soon,
  )
  t.equal((await get(beta.token, `/studies/${b1.studyInstanceUID}/metadata`)).status, 200, 'back')
  await tokens.removeMember('beta', 'alice')
})

async function stow(token: string, path: string, files: Buffer[]): Promise<RawResponse> {
  const { body, type } = stowBody(files)
  return send(gate.url, {
    method: 'POST',
    path: `/api${path}`,
    headers: { ...bearer(token), 'content-type': type, accept: 'application/dicom+json' },
    body,
  })
}

t.test('STOW-RS through an album write token makes the new study visible in that album only', async (t) => {
  const file = await orthanc.makeInstanceFile({ patientName: 'STOWED^ALPHA', patientId: 'PS1' })
  const res = await stow(alphaWriter.token, '/studies', [file])
  t.equal(res.status, 200, res.text)
  const urls = JSON.stringify(res.json()).match(/"(http[^"]+\/studies\/([0-9.]+))"/)
  t.ok(urls, 'the answer carries a RetrieveURL')
  const uid = urls?.[2] as string
  // Visible at once to the album's tokens (this replica forgot its cached set before answering).
  t.ok((await column(t, alpha.token, '/studies')).includes(uid), 'in alpha')
  t.equal((await get(alpha.token, `/studies/${uid}/metadata`)).status, 200)
  t.notOk((await column(t, beta.token, '/studies')).includes(uid), 'not in beta')
  t.equal((await get(beta.token, `/studies/${uid}/metadata`)).status, 404)
  t.ok((await redis.client.sismember('tg:album:alpha:studies', uid)) === 1)
})

t.test('STOW-RS through a user token adds to its inbox; a read-only token may not store', async (t) => {
  const file = await orthanc.makeInstanceFile({ patientName: 'STOWED^BOB', patientId: 'PS2' })
  const res = await stow(bob.token, '/studies', [file])
  t.equal(res.status, 200)
  const inbox = await column(t, bob.token, '/studies?inbox=true')
  t.equal(inbox.length, 1)
  t.same(await redis.client.smembers('tg:user:bob:inbox'), inbox)
  const refused = await stow(alpha.token, '/studies', [file])
  t.equal(refused.status, 403)
})

t.test('a failed store adds nothing', async (t) => {
  const before = await redis.client.smembers('tg:album:alpha:studies')
  const garbage = await stow(alphaWriter.token, '/studies', [Buffer.from('not a DICOM file')])
  t.not(garbage.status, 200)
  // An instance of another study, stored under the wrong study UID: Orthanc refuses it (409).
  const file = await orthanc.makeInstanceFile({ patientName: 'WRONG^STUDY', patientId: 'PS3' })
  const wrong = await stow(alphaWriter.token, `/studies/${a2.studyInstanceUID}`, [file])
  t.not(wrong.status, 200)
  t.same((await redis.client.smembers('tg:album:alpha:studies')).sort(), before.sort())
})

t.test(
  "storing under another album's StudyInstanceUID is refused before it reaches the archive",
  async (t) => {
    // Cross-album write: an instance claiming beta's study, through an alpha write token.
    const crafted = await orthanc.makeInstanceFile({
      studyInstanceUID: b1.studyInstanceUID,
      patientId: 'PB1',
    })
    const before = await orthancInstancesOf(b1.studyInstanceUID)
    const res = await stow(alphaWriter.token, '/studies', [crafted])
    t.equal(res.status, 409, res.text)
    t.equal((res.json() as { error: string }).error, 'conflict')
    t.same(
      await orthancInstancesOf(b1.studyInstanceUID),
      before,
      "nothing added to beta's study in the archive",
    )
    t.equal(
      await redis.client.sismember('tg:album:alpha:studies', b1.studyInstanceUID),
      0,
      'not added to alpha',
    )
    t.equal((await get(alpha.token, `/studies/${b1.studyInstanceUID}/metadata`)).status, 404, 'out of reach')
    t.equal((await get(beta.token, `/studies/${b1.studyInstanceUID}/metadata`)).status, 200, 'beta intact')
  },
)

t.test("re-storing copies of a foreign study's instances does not add that study", async (t) => {
  // The attacker holds copies of x1's instance (same Patient/Study/Series/SOP UIDs).
  const copy = await orthanc.makeInstanceFile({ studyInstanceUID: x1.studyInstanceUID, patientId: 'PX1' })
  const res = await stow(alphaWriter.token, '/studies', [copy])
  t.equal(res.status, 409, res.text)
  t.equal(await redis.client.sismember('tg:album:alpha:studies', x1.studyInstanceUID), 0)
  t.notOk((await column(t, alpha.token, '/studies')).includes(x1.studyInstanceUID))
  // Also through a user token's inbox, and through the study path.
  const viaPath = await stow(bob.token, `/studies/${x1.studyInstanceUID}`, [copy])
  t.equal(viaPath.status, 409)
  t.equal(await redis.client.sismember('tg:user:bob:inbox', x1.studyInstanceUID), 0)
})

t.test('a forged Host naming a study in the RetrieveURL adds nothing but what was stored', async (t) => {
  // x1's own instance file, its StudyInstanceUID changed (same length): a new study for the
  // archive, whose only instance shares its SOP Instance UID with x1's only instance.
  const original = await send(orthanc.url, { path: `/instances/${x1.orthancInstanceId}/file` })
  const uid = x1.studyInstanceUID
  const fresh = `${uid.slice(0, -1)}${uid.endsWith('9') ? '8' : '9'}`
  const file = Buffer.from(original.body.toString('latin1').replace(uid, fresh), 'latin1')
  const { body, type } = stowBody([file])
  const res = await send(gate.url, {
    method: 'POST',
    path: '/api/studies',
    headers: {
      ...bearer(bob.token),
      // Orthanc builds RetrieveURLs from the forwarded host: `http://h/studies/<x1>/x/dicom-web/…`.
      host: `h/studies/${uid}/x`,
      'content-type': type,
      accept: 'application/dicom+json',
    },
    body,
  })
  t.equal(res.status, 200, res.text)
  const inbox = await redis.client.smembers('tg:user:bob:inbox')
  t.notOk(inbox.includes(uid), 'the study named in the forged Host did not join the inbox')
  t.ok(inbox.includes(fresh), 'the study the data names did')
  t.equal((await get(bob.token, `/studies/${uid}/metadata`)).status, 404)
})

t.test(
  'an implicit VR little endian instance is read as Orthanc reads it, and joins the album',
  async (t) => {
    const study = `2.25.${Date.now()}${Math.floor(Math.random() * 1e6)}2`
    const file = instance(study, `${study}.1.1`, IMPLICIT_LE)
    const res = await stow(alphaWriter.token, '/studies', [file])
    t.equal(res.status, 200, res.text)
    t.same(
      await orthancInstancesOf(study),
      [`${study}.1.1`],
      'Orthanc filed it under the study tokengate read',
    )
    t.equal(await redis.client.sismember('tg:album:alpha:studies', study), 1)
  },
)

t.test('a refused part stops the upload there; a retry of the allowed parts then succeeds', async (t) => {
  const fresh = `2.25.${Date.now()}${Math.floor(Math.random() * 1e6)}`
  const later = `2.25.${Date.now()}${Math.floor(Math.random() * 1e6)}1`
  const mine = await orthanc.makeInstanceFile({ studyInstanceUID: fresh, patientId: 'PRETRY' })
  const foreign = await orthanc.makeInstanceFile({ studyInstanceUID: b1.studyInstanceUID, patientId: 'PB1' })
  const after = await orthanc.makeInstanceFile({ studyInstanceUID: later, patientId: 'PRETRY' })
  const res = await stow(alphaWriter.token, '/studies', [mine, foreign, after])
  t.equal(res.status, 409)
  t.same(await orthancInstancesOf(later), [], 'the part after the refused one never reached the archive')
  t.equal(await redis.client.sismember('tg:album:alpha:studies', fresh), 0, 'nothing joined the album')
  // The archive may have stored the first part (it was allowed): stored through alpha, so a retry
  // is still alpha's to make, and this time the study joins.
  const retry = await stow(alphaWriter.token, '/studies', [mine])
  t.equal(retry.status, 200, retry.text)
  t.equal(await redis.client.sismember('tg:album:alpha:studies', fresh), 1)
  // Another album cannot write into it now that it exists.
  const betaWriter = await tokens.create({
    kind: 'album',
    album: 'beta',
    perms: 'read,write',
    expiresIn: '1h',
  })
  const intruder = await orthanc.makeInstanceFile({ studyInstanceUID: fresh, patientId: 'PRETRY' })
  t.equal((await stow(betaWriter.token, '/studies', [intruder])).status, 409)
})

t.test(
  'a part that is not readable DICOM, or a body split differently by other parsers, is refused',
  async (t) => {
    const file = await orthanc.makeInstanceFile({ patientName: 'ODD^BODY', patientId: 'POB' })
    const send400 = async (name: string, body: Buffer, type: string) => {
      const res = await send(gate.url, {
        method: 'POST',
        path: '/api/studies',
        headers: { ...bearer(alphaWriter.token), 'content-type': type, accept: 'application/dicom+json' },
        body,
      })
      t.equal(res.status, 400, `${name}: ${res.text}`)
    }
    const ok = stowBody([file])
    await send400(
      'a quoted boundary with a space',
      ok.body,
      ok.type.replace(/boundary=(\S+)/, 'boundary="$1 x"'),
    )
    await send400('two boundaries', ok.body, `${ok.type}; boundary=other`)
    await send400('not multipart', ok.body, 'application/dicom')
    const withLength = Buffer.from(
      ok.body
        .toString('latin1')
        .replace('Content-Type: application/dicom', `Content-Length: 10\r\nContent-Type: application/dicom`),
      'latin1',
    )
    await send400('a part Content-Length', withLength, ok.type)
    const noDicm = Buffer.from(file)
    noDicm.write('XXXX', 128, 'latin1')
    await send400('no DICM', stowBody([noDicm]).body, ok.type)
    await send400('trailing garbage', Buffer.concat([ok.body, Buffer.from('--tg-boundary\r\n')]), ok.type)
  },
)

t.test(
  'a new study uploaded in parallel requests joins the album; a later upload to it is fine',
  async (t) => {
    const study = `2.25.${Date.now()}${Math.floor(Math.random() * 1e6)}`
    const files = await Promise.all(
      [1, 2, 3].map(() => orthanc.makeInstanceFile({ studyInstanceUID: study, patientId: 'PPAR' })),
    )
    const answers = await Promise.all(files.slice(0, 2).map((f) => stow(alphaWriter.token, '/studies', [f])))
    t.same(
      answers.map((a) => a.status),
      [200, 200],
    )
    t.equal(await redis.client.sismember('tg:album:alpha:studies', study), 1, 'in alpha after both stores')
    const third = await stow(alphaWriter.token, `/studies/${study}`, [files[2] as Buffer])
    t.equal(third.status, 200)
    t.equal(((await get(alpha.token, `/studies/${study}/metadata`)).json() as Row[]).length, 3)
  },
)

t.test('a zip download is refused with 406 and a reason, after the token and its permission', async (t) => {
  const zip = await get(betaDownload.token, `/studies/${b1.studyInstanceUID}`, { accept: 'application/zip' })
  t.equal(zip.status, 406)
  t.same(zip.json(), {
    error: 'not_acceptable',
    reason:
      'this archive cannot produce application/zip; ask for multipart/related; type="application/dicom" instead',
  })
  t.equal(
    (await get(betaDownload.token, `/studies/${b1.studyInstanceUID}?accept=application%2Fzip`)).status,
    406,
  )
  t.equal(
    (await get(beta.token, `/studies/${b1.studyInstanceUID}`, { accept: 'application/zip' })).status,
    403,
    'no download permission: 403 first',
  )
})

t.test('RetrieveURLs point at tokengate, and following one works with Bearer and with link', async (t) => {
  const search = await get(alpha.token, `/studies?StudyInstanceUID=${a1.studyInstanceUID}`)
  const url = ((search.json() as Row[])[0]?.['00081190']?.Value?.[0] ?? '') as string
  t.equal(url, `${gate.url}/api/studies/${a1.studyInstanceUID}`)
  const meta = await send(gate.url, {
    path: `${new URL(url).pathname}/metadata`,
    headers: bearer(alpha.token),
  })
  t.equal(meta.status, 200)
  const bulk = (meta.json() as Row[])[0]?.['7FE00010'] as { BulkDataURI?: string } | undefined
  t.match(bulk?.BulkDataURI, new RegExp(`^${gate.url}/api/studies/${a1.studyInstanceUID}/series/`))

  const link = await send(gate.url, {
    path: `/api/link/${alpha.token}/studies/${a1.studyInstanceUID}/series`,
  })
  t.equal(link.status, 200)
  const seriesUrl = ((link.json() as Row[])[0]?.['00081190']?.Value?.[0] ?? '') as string
  t.ok(
    seriesUrl.startsWith(`${gate.url}/api/link/${alpha.token}/studies/${a1.studyInstanceUID}/series/`),
    'keeps /link/<token>/',
  )
  const followed = await send(gate.url, { path: `${new URL(seriesUrl).pathname}/metadata` })
  t.equal(followed.status, 200, 'no Authorization needed: the link is in the URL')
  t.notMatch(followed.text, /127\.0\.0\.1:\d+\/dicom-web/, 'no upstream URL left')
})

t.test(
  'DELETE of a study takes it out of the album only: the archive and other albums keep it',
  async (t) => {
    const shared = await orthanc.createStudy({ patientName: 'SHARED^STUDY', patientId: 'PS1' })
    await sets.add({ kind: 'album', album: 'alpha' }, [shared.studyInstanceUID])
    await sets.add({ kind: 'album', album: 'beta' }, [shared.studyInstanceUID])
    const del = (token: string, path: string) =>
      send(gate.url, { method: 'DELETE', path: `/api${path}`, headers: bearer(token) })

    t.equal(
      (await del(alpha.token, `/studies/${shared.studyInstanceUID}`)).status,
      403,
      'a read token may not',
    )
    const series = await del(
      alphaWriter.token,
      `/studies/${shared.studyInstanceUID}/series/${shared.seriesInstanceUID}`,
    )
    t.equal(series.status, 403, 'a series is never deleted through tokengate')
    t.match(
      (series.json() as { reason: string }).reason,
      /PUT or DELETE \/studies\/\{uid\}, not a series or an instance/,
    )
    t.equal(
      (await del(alphaWriter.token, `/studies/${b1.studyInstanceUID}`)).status,
      404,
      "another album's study: 404",
    )

    const res = await del(alphaWriter.token, `/studies/${shared.studyInstanceUID}`)
    t.equal(res.status, 204)
    t.notOk(
      (await column(t, alpha.token, '/studies')).includes(shared.studyInstanceUID),
      'gone from the album at once',
    )
    t.equal((await get(alpha.token, `/studies/${shared.studyInstanceUID}/metadata`)).status, 404)
    t.ok(
      (await column(t, beta.token, '/studies')).includes(shared.studyInstanceUID),
      'still in the other album',
    )
    const direct = await send(orthanc.url, { path: `/dicom-web/studies/${shared.studyInstanceUID}/metadata` })
    t.equal(direct.status, 200, 'still in the archive')
    t.equal(
      (await del(alphaWriter.token, `/studies/${shared.studyInstanceUID}`)).status,
      404,
      'a second DELETE: 404',
    )
  },
)

t.test(
  'PUT of a study adds it where the caller may add (KHEOPS "appropriate"), never to the archive',
  async (t) => {
    const put = (token: string, path: string) =>
      send(gate.url, { method: 'PUT', path: `/api${path}`, headers: bearer(token), body: '' })
    const carolAppropriates = await tokens.create({
      kind: 'album',
      album: 'alpha',
      user: 'carol',
      perms: 'read,appropriate',
      expiresIn: '1h',
    })
    const ownerless = await tokens.create({
      kind: 'album',
      album: 'alpha',
      perms: 'read,appropriate',
      expiresIn: '1h',
    })
    const carol = await tokens.create({ kind: 'user', user: 'carol', expiresIn: '1h' })

    t.equal((await put(alpha.token, `/studies/${a2.studyInstanceUID}`)).status, 403, 'no appropriate: 403')
    t.equal(
      (await put(ownerless.token, `/studies/${a2.studyInstanceUID}`)).status,
      403,
      'no owner, no inbox: 403',
    )
    t.equal(
      (await put(carolAppropriates.token, `/studies/${b1.studyInstanceUID}`)).status,
      404,
      'not in the album',
    )
    t.equal((await put(carolAppropriates.token, `/studies/${a2.studyInstanceUID}`)).status, 204)
    t.same(
      await column(t, carol.token, '/studies?inbox=true'),
      [a2.studyInstanceUID],
      "into its owner's inbox",
    )

    t.equal(
      (await put(alice.token, `/studies/${b1.studyInstanceUID}`)).status,
      404,
      'a study alice cannot see',
    )
    t.equal(
      (await put(alice.token, `/studies/${a1.studyInstanceUID}`)).status,
      204,
      'from an album into her inbox',
    )
    t.ok((await column(t, alice.token, '/studies?inbox=true')).includes(a1.studyInstanceUID))
    t.equal(
      (await put(alice.token, `/studies/${i1.studyInstanceUID}?album=alpha`)).status,
      204,
      'inbox → album',
    )
    t.ok((await column(t, alpha.token, '/studies')).includes(i1.studyInstanceUID), 'the album now holds it')
    t.equal(
      (await put(alice.token, `/studies/${i1.studyInstanceUID}?album=beta`)).status,
      404,
      'not a member of beta',
    )
    const series = await put(alice.token, `/studies/${a1.studyInstanceUID}/series/${a1.seriesInstanceUID}`)
    t.equal(series.status, 403, 'albums hold whole studies')
  },
)
