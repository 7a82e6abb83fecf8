// Split QIDO searches (scoping: studies) against a small QIDO upstream that records what arrives
// and answers a study row for each UID of the list it knows: a long StudyInstanceUID list goes
// out as several searches each within studies.maxUrlLength, every visible UID exactly once; the
// merged answer honours limit/offset and stops asking once it has enough; an empty narrowing
// never reaches the upstream; upstream failures are passed on before the first byte, and cut the
// connection after it.
import { createServer, type IncomingMessage } from 'node:http'
import t from 'tap'
import { makeKeys } from '../../src/token/keys.js'
import { StudySets } from '../../src/token/study-sets.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { listenLoopback } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)

/** Album UIDs 2.25.<i>; the upstream holds every tenth. */
const ALBUM = Array.from({ length: 2000 }, (_, i) => `2.25.${100000 + i}`)
const known = (uid: string) => Number(uid.split('.').at(-1)) % 10 === 0

interface Seen {
  url: string
  headers: IncomingMessage['headers']
}
const seen: Seen[] = []
let upstreamBase = ''
let breakRequests = 0
const misbehaving = { STALL: 0, RESET: 0 }
const upstream = createServer((req, res) => {
  seen.push({ url: req.url ?? '', headers: req.headers })
  const url = new URL(req.url ?? '/', 'http://x')
  if (url.searchParams.get('PatientName') === 'ERROR') {
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end('{"Message":"bad filter"}')
    return
  }
  const list = (url.searchParams.get('StudyInstanceUID') ?? '').split(',').filter(Boolean)
  // The second search of a request breaks: the first has started the answer by then.
  if (url.searchParams.get('PatientName') === 'BREAK' && ++breakRequests === 2) {
    res.writeHead(200, { 'content-type': 'application/dicom+json' })
    res.end('[{"broken": ')
    return
  }
  // The first search resets after its headers and '[': nothing for the client yet.
  if (url.searchParams.get('PatientName') === 'EARLY') {
    res.writeHead(200, { 'content-type': 'application/dicom+json' })
    res.write('[', () => setTimeout(() => res.socket?.destroy(), 20))
    return
  }
  // The second search of a request stops mid-body: silent, or its connection reset.
  const misbehave = url.searchParams.get('PatientName')
  if ((misbehave === 'STALL' || misbehave === 'RESET') && ++misbehaving[misbehave] === 2) {
    res.writeHead(200, { 'content-type': 'application/dicom+json' })
    res.write('[{"0020000D": {"vr": "UI", "Value": ["2.25.1"]}},', () => {
      if (misbehave === 'RESET') setTimeout(() => res.socket?.destroy(), 20)
    })
    return
  }
  const limit = Number(url.searchParams.get('limit') ?? Number.POSITIVE_INFINITY)
  const rows = list
    .filter(known)
    .slice(0, limit)
    .map((uid) => ({
      '0020000D': { vr: 'UI', Value: [uid] },
      '00081190': { vr: 'UR', Value: [`${upstreamBase}/dicom-web/studies/${uid}`] },
    }))
  res.writeHead(200, { 'content-type': 'application/dicom+json' })
  res.end(JSON.stringify(rows, null, 1))
})
const listening = await listenLoopback(upstream)
t.teardown(listening.stop)
upstreamBase = listening.url

const MAX_URL = 1000
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstreamBase}/dicom-web`,
  config: {
    scoping: 'studies',
    studies: { maxUrlLength: MAX_URL, parallelSearches: 3 },
    forward: { idleTimeout: '400ms' },
  },
})
t.teardown(gate.stop)
await new StudySets(redis.client, makeKeys('tg:')).add({ kind: 'album', album: 'big' }, ALBUM)
const token = (
  await admin(redis.client).create({ kind: 'album', album: 'big', perms: 'read', expiresIn: '1h' })
).token

async function search(query: string) {
  const before = seen.length
  const res = await send(gate.url, { path: `/api/studies${query}`, headers: bearer(token) })
  return { res, upstream: seen.slice(before) }
}
const uidsOf = (body: unknown): string[] =>
  (body as { '0020000D': { Value: string[] } }[]).map((r) => r['0020000D'].Value[0] as string)
const listOf = (url: string) =>
  (new URL(url, 'http://x').searchParams.get('StudyInstanceUID') ?? '').split(',')

let full: string[] = []

t.test('a 2,000-study album is searched in pieces within maxUrlLength, each UID once', async (t) => {
  const { res, upstream: sent } = await search('')
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'application/dicom+json')
  full = uidsOf(res.json())
  t.same([...full].sort(), ALBUM.filter(known).sort(), 'exactly the album studies the upstream holds')
  t.ok(sent.length > 10, `split over ${sent.length} searches`)
  t.ok(
    sent.every((s) => `/dicom-web${s.url.slice('/dicom-web'.length)}`.length <= MAX_URL),
    'every upstream request target within maxUrlLength',
  )
  const all = sent.flatMap((s) => listOf(s.url))
  t.equal(all.length, ALBUM.length, 'every album UID sent')
  t.equal(new Set(all).size, ALBUM.length, 'each once')
  t.ok(
    sent.every((s) => !/album|inbox/i.test(s.url)),
    'no album/inbox parameter upstream',
  )
  t.equal(sent[0]?.headers['x-tokengate-scope'], 'album:big', 'identity headers on every search')
  t.notOk(sent[0]?.headers.authorization, "never the client's credential")
})

t.test('limit and offset apply to the merged result, in the same order', async (t) => {
  for (const [query, from, to] of [
    ['?limit=10', 0, 10],
    ['?offset=15&limit=10', 15, 25],
    ['?offset=195', 195, 200],
    ['?offset=199&limit=5', 199, 200],
    ['?offset=200', 200, 200],
    ['?offset=0&limit=0', 0, 0],
  ] as const) {
    const { res } = await search(query)
    t.equal(res.status, 200, query)
    t.same(uidsOf(res.json()), full.slice(from, to), query)
  }
})

t.test(
  'each search asks the upstream for at most offset + limit rows, and no more searches than needed',
  async (t) => {
    const { upstream: sent } = await search('?offset=3&limit=4')
    t.ok(sent.every((s) => new URL(s.url, 'http://x').searchParams.get('limit') === '7'))
    t.ok(
      sent.every((s) => !new URL(s.url, 'http://x').searchParams.has('offset')),
      'offset is applied by tokengate',
    )
    const { upstream: all } = await search('')
    t.ok(sent.length < all.length / 2, `${sent.length} searches for 7 rows, ${all.length} for all`)
  },
)

t.test("the client's own StudyInstanceUID list is intersected with the album's", async (t) => {
  const inAlbum = ALBUM.filter(known).slice(0, 3)
  const outside = ['1.2.3.4', '2.25.9999990']
  const { res, upstream: sent } = await search(
    `?StudyInstanceUID=${[...inAlbum, ...outside].join(',')}&PatientName=X*`,
  )
  t.same(uidsOf(res.json()).sort(), [...inAlbum].sort())
  t.equal(sent.length, 1, 'a short list: one search')
  t.same(listOf(sent[0]?.url ?? '').sort(), [...inAlbum].sort(), 'only the album part goes upstream')
  t.match(sent[0]?.url, /PatientName=X\*/, 'other filters kept as sent')
})

t.test('a search narrowed to nothing is answered [] without asking the upstream', async (t) => {
  const { res, upstream: sent } = await search('?StudyInstanceUID=1.2.3.4')
  t.equal(res.status, 200)
  t.equal(res.text, '[]')
  t.equal(res.headers['content-type'], 'application/dicom+json')
  t.equal(sent.length, 0)
})

t.test('RetrieveURLs in the merged answer point at tokengate', async (t) => {
  const { res } = await search('?limit=3')
  const urls = (res.json() as { '00081190': { Value: string[] } }[]).map((r) => r['00081190'].Value[0])
  t.equal(urls.length, 3)
  t.ok(
    urls.every((u) => u?.startsWith(`${gate.url}/api/studies/2.25.`)),
    urls.join(' '),
  )
})

t.test("an upstream error in the first search reaches the client as the upstream's answer", async (t) => {
  const { res } = await search('?PatientName=ERROR')
  t.equal(res.status, 400)
  t.same(res.json(), { Message: 'bad filter' })
})

t.test('an upstream that breaks after the answer started cuts the client connection', async (t) => {
  await t.rejects(search('?PatientName=BREAK'), 'the client sees a broken response, never a clean end')
  const line = gate.logs
    .map((l) => JSON.parse(l))
    .filter((l) => l.msg === 'request')
    .at(-1)
  t.equal(line?.reason, 'econnreset')
})

t.test('a search whose upstream answer goes silent mid-body is cut after forward.idleTimeout', async (t) => {
  await t.rejects(search('?PatientName=STALL'), 'the client sees a broken response, never a clean end')
  const line = gate.logs
    .map((l) => JSON.parse(l))
    .filter((l) => l.msg === 'request')
    .at(-1)
  t.equal(line?.reason, 'body', 'logged as an upstream body timeout')
  const { res } = await search('?limit=1')
  t.equal(res.status, 200, 'the next search is served')
})

t.test(
  'a search whose upstream connection resets mid-body cuts the client; the next is served',
  async (t) => {
    await t.rejects(search('?PatientName=RESET'), 'the client sees a broken response, never a clean end')
    const { res } = await search('?limit=1')
    t.equal(res.status, 200)
  },
)

t.test("split searches use the forwarder's upstream connections: none is left in use", async (t) => {
  await search('?limit=1')
  const counts = gate.app.forwarder.socketCounts()
  t.ok(counts.active + counts.idle > 0, "the searches went through the forwarder's pool")
  const after = await waitFor('no upstream socket in use', () => {
    const now = gate.app.forwarder.socketCounts()
    return now.active === 0 ? now : null
  })
  t.equal(after.active, 0, 'none left in use')
})

t.test(
  'a first search that resets before its first element is answered 502, not a closed connection',
  async (t) => {
    const { res } = await search('?PatientName=EARLY')
    t.equal(res.status, 502)
    t.same(res.json(), { error: 'bad_gateway', reason: 'the upstream is unavailable' })
  },
)
