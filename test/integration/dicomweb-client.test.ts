// A real DICOMweb client library (dicomweb-client, with the xhr2 XMLHttpRequest for Node) through
// tokengate in front of Orthanc, scoping: studies: it searches, retrieves metadata, follows the
// BulkDataURI the answer gives it (rewritten to point at tokengate) and stores a new study, which
// then shows in the album it was stored through and nowhere else. With a Bearer token, and with a
// link URL as the client's base URL.
import dicomweb from 'dicomweb-client'
import t from 'tap'
import XMLHttpRequest from 'xhr2'
import { makeKeys } from '../../src/token/keys.js'
import { StudySets } from '../../src/token/study-sets.js'
import { admin, startGate } from '../helpers/gate.js'
import { startOrthanc } from '../helpers/orthanc.js'
import { startRedis } from '../helpers/redis.js'

// dicomweb-client is written for browsers: it needs a global XMLHttpRequest.
;(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest = XMLHttpRequest

const redis = await startRedis()
t.teardown(redis.stop)
const orthanc = await startOrthanc()
t.teardown(orthanc.stop)
const mine = await orthanc.createStudy({ patientName: 'CLIENT^MINE', patientId: 'PC1' })
const theirs = await orthanc.createStudy({ patientName: 'CLIENT^THEIRS', patientId: 'PC2' })
const sets = new StudySets(redis.client, makeKeys('tg:'))
await sets.add({ kind: 'album', album: 'viewer' }, [mine.studyInstanceUID])
await sets.add({ kind: 'album', album: 'other' }, [theirs.studyInstanceUID])

const gate = await startGate({
  redisUrl: redis.url,
  upstream: orthanc.dicomWebUrl,
  config: { scoping: 'studies' },
})
t.teardown(gate.stop)
const tokens = admin(redis.client)
const writer = await tokens.create({ kind: 'album', album: 'viewer', perms: 'read,write', expiresIn: '1h' })
const other = await tokens.create({ kind: 'album', album: 'other', perms: 'read', expiresIn: '1h' })

type Dataset = Record<string, { Value?: unknown[]; BulkDataURI?: string }>
const uid = (d: Dataset, tag: string) => d[tag]?.Value?.[0] as string

/** The calls used here (the package's generated types mark every option as required). */
interface Client {
  searchForStudies(options?: object): Promise<unknown>
  searchForSeries(options: { studyInstanceUID: string }): Promise<unknown>
  retrieveStudyMetadata(options: { studyInstanceUID: string }): Promise<unknown>
  retrieveBulkData(options: { BulkDataURI: string }): Promise<unknown>
  storeInstances(options: { datasets: ArrayBuffer[] }): Promise<unknown>
}
const DICOMwebClient = dicomweb.api.DICOMwebClient as unknown as new (options: {
  url: string
  headers?: Record<string, string>
  verbose?: boolean
}) => Client

// verbose: false: the library prints a whole XMLHttpRequest to the console for every refused
// request; the tests check the refusals they expect themselves.
function bearerClient(token: string): Client {
  return new DICOMwebClient({
    url: `${gate.url}/api`,
    headers: { Authorization: `Bearer ${token}` },
    verbose: false,
  })
}

t.test('searchForStudies sees the album as the whole PACS', async (t) => {
  const studies = (await bearerClient(writer.token).searchForStudies()) as Dataset[]
  t.same(
    studies.map((s) => uid(s, '0020000D')),
    [mine.studyInstanceUID],
  )
  const series = (await bearerClient(writer.token).searchForSeries({
    studyInstanceUID: mine.studyInstanceUID,
  })) as Dataset[]
  t.same(
    series.map((s) => uid(s, '0020000E')),
    [mine.seriesInstanceUID],
  )
})

t.test('retrieveStudyMetadata, then the BulkDataURI it gives, both through tokengate', async (t) => {
  const client = bearerClient(writer.token)
  const metadata = (await client.retrieveStudyMetadata({
    studyInstanceUID: mine.studyInstanceUID,
  })) as Dataset[]
  t.equal(metadata.length, 1)
  const bulk = metadata[0]?.['7FE00010']?.BulkDataURI as string
  t.ok(bulk.startsWith(`${gate.url}/api/studies/${mine.studyInstanceUID}/`), bulk)
  const pixels = (await client.retrieveBulkData({ BulkDataURI: bulk })) as ArrayBuffer[]
  t.equal(pixels[0]?.byteLength, 64 * 64, 'the 64×64 8-bit pixel data')
  const refused = await client.retrieveStudyMetadata({ studyInstanceUID: theirs.studyInstanceUID }).then(
    () => null,
    (err: { status?: number }) => err,
  )
  t.equal(refused?.status, 404, "another album's study does not exist for this client")
})

t.test('a client whose base URL is a link URL needs no header, and follows RetrieveURLs', async (t) => {
  const client = new DICOMwebClient({ url: `${gate.url}/api/link/${writer.token}`, verbose: false })
  const studies = (await client.searchForStudies()) as Dataset[]
  const retrieveUrl = uid(studies[0] as Dataset, '00081190')
  t.equal(retrieveUrl, `${gate.url}/api/link/${writer.token}/studies/${mine.studyInstanceUID}`)
  const viaUrl = new DICOMwebClient({ url: retrieveUrl.replace(/\/studies\/.*$/, ''), verbose: false })
  const metadata = (await viaUrl.retrieveStudyMetadata({
    studyInstanceUID: mine.studyInstanceUID,
  })) as Dataset[]
  t.equal(uid(metadata[0] as Dataset, '00080018'), mine.sopInstanceUID)
})

t.test('storeInstances through the album token adds the new study to that album only', async (t) => {
  const file = await orthanc.makeInstanceFile({ patientName: 'CLIENT^STORED', patientId: 'PC3' })
  const client = bearerClient(writer.token)
  const dataset = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer
  await client.storeInstances({ datasets: [dataset] })
  const studies = ((await client.searchForStudies()) as Dataset[]).map((s) => uid(s, '0020000D'))
  t.equal(studies.length, 2, 'the stored study is in the album at once')
  const stored = studies.find((s) => s !== mine.studyInstanceUID) as string
  const metadata = (await client.retrieveStudyMetadata({ studyInstanceUID: stored })) as Dataset[]
  t.equal(metadata.length, 1)
  const seenByOther = ((await bearerClient(other.token).searchForStudies()) as Dataset[]).map((s) =>
    uid(s, '0020000D'),
  )
  t.same(seenByOther, [theirs.studyInstanceUID], 'not in the other album')
})
