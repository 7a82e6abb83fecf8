// scoping: studies, the pure part and the plan: where a request lands in the DICOMweb tree, every
// spelling of a StudyInstanceUID filter and of WADO-URI studyUID, how a UID list is split, and
// the Plan for each kind of request. Routes come from the real matcher; the study sets are a fake
// `{ albumStudies, inboxStudies, userAlbums }` (the cached store's reads).
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'
import { AmbiguousRequest, BadRequest, OutOfScope } from '../../../src/errors.js'
import type { Decision, Scope } from '../../../src/policy/decide.js'
import { strippedHeaders } from '../../../src/rewrite/identity-headers.js'
import { type Plan, planRequest, type RequestView } from '../../../src/rewrite/plan.js'
import { classifyStudyRoute, readSearchQuery, splitUids } from '../../../src/rewrite/study-query.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { matchRoute } from '../../../src/route/match.js'

t.test('classifyStudyRoute: searches, study paths, stores, WADO-URI and the rest', async (t) => {
  const cases: [string, string, unknown][] = [
    ['GET', '/studies', { kind: 'search', study: null }],
    ['GET', '/studies/', { kind: 'search', study: null }],
    ['HEAD', '/series', { kind: 'search', study: null }],
    ['GET', '/instances', { kind: 'search', study: null }],
    ['GET', '/studies/1.2/series', { kind: 'search', study: '1.2' }],
    ['GET', '/studies/1.2/instances', { kind: 'search', study: '1.2' }],
    ['GET', '/studies/1.2/series/3.4/instances', { kind: 'search', study: '1.2' }],
    ['GET', '/studies/1.2', { kind: 'study', study: '1.2' }],
    ['GET', '/studies/%31.2/metadata', { kind: 'study', study: '1.2' }],
    ['GET', '/studies/1.2/series/3.4/metadata', { kind: 'study', study: '1.2' }],
    ['GET', '/studies/1.2/series/3.4/instances/5.6/frames/1', { kind: 'study', study: '1.2' }],
    ['GET', '/studies/1.2/series/3.4/instances/5.6/rendered', { kind: 'study', study: '1.2' }],
    ['DELETE', '/studies/1.2', { kind: 'study', study: '1.2' }],
    ['PUT', '/studies/1.2', { kind: 'study', study: '1.2' }],
    ['POST', '/studies', { kind: 'store', study: null }],
    ['POST', '/studies/1.2', { kind: 'store', study: '1.2' }],
    ['POST', '/studies/1.2/series', { kind: 'study', study: '1.2' }],
    ['GET', '/series/3.4/metadata', { kind: 'other' }],
    ['GET', '/instances/5.6', { kind: 'other' }],
    ['DELETE', '/studies', { kind: 'other' }],
    ['GET', '/', { kind: 'other' }],
  ]
  for (const [method, path, want] of cases)
    t.same(classifyStudyRoute(method, path, false), want, `${method} ${path}`)
  t.same(classifyStudyRoute('GET', '/wado', true), { kind: 'wado' })
  t.throws(() => classifyStudyRoute('GET', '/studies/%zz/metadata', false), BadRequest)
})

t.test('readSearchQuery folds every spelling of StudyInstanceUID into one union', async (t) => {
  const cases: [string, string[] | null][] = [
    ['', null],
    ['PatientID=1', null],
    ['StudyInstanceUID=1.2', ['1.2']],
    ['StudyInstanceUID=1.2,1.3', ['1.2', '1.3']],
    ['StudyInstanceUID=1.2%2C1.3', ['1.2', '1.3']],
    ['StudyInstanceUID=1.2%5C1.3', ['1.2', '1.3']],
    ['StudyInstanceUID=1.2\\1.3', ['1.2', '1.3']],
    ['StudyInstanceUID=1.2&StudyInstanceUID=1.3', ['1.2', '1.3']],
    ['studyinstanceuid=1.2', ['1.2']],
    ['0020000D=1.2', ['1.2']],
    ['0020000d=1.2', ['1.2']],
    ['%53tudy%49nstanceUID=1.2', ['1.2']],
    ['StudyInstanceUID=+1.2+', ['1.2']],
    ['StudyInstanceUID=', null],
    ['StudyInstanceUID=*', null],
    ['StudyInstanceUID', null],
    ['StudyInstanceUID=1.2,,1.2', ['1.2']],
  ]
  for (const [query, want] of cases) t.same(readSearchQuery(query).studies, want, query || '(none)')
})

t.test(
  'readSearchQuery keeps every other pair byte for byte, without album/inbox, limit or offset',
  async (t) => {
    const q = readSearchQuery(
      'PatientName=D%C3%96E*&album=x&limit=5&includefield=all&Inbox=true&offset=2&fuzzymatching=true',
    )
    t.same(q.kept, ['PatientName=D%C3%96E*', 'includefield=all', 'fuzzymatching=true'])
    t.equal(q.limit, 5)
    t.equal(q.offset, 2)
    for (const bad of ['limit=-1', 'limit=x', 'offset=1.5', '%zz=1', 'StudyInstanceUID=%zz']) {
      t.throws(() => readSearchQuery(bad), BadRequest, bad)
    }
  },
)

t.test('splitUids keeps each list within the budget, in order, one UID at least', async (t) => {
  const uids = ['1.1', '1.22', '1.333', '1.4444', '1.5']
  const lists = splitUids(uids, 10)
  t.same(lists.flat(), uids)
  t.ok(lists.every((l) => l.join(',').length <= 10 || l.length === 1))
  t.same(splitUids(['1.234567890123'], 5), [['1.234567890123']])
  t.same(splitUids([], 5), [])
})

// --- the plan ---

const config = configSchema.parse({
  mounts: [{ path: '/api', upstream: 'http://pacs:8042/dicom-web', wado: 'http://pacs:8042/wado' }],
  scoping: 'studies',
  studies: { maxUrlLength: 600 },
})
const routes = compileRoutes(config)
const cfg = {
  identityHeaders: config.identityHeaders,
  stripped: strippedHeaders(config.identityHeaders),
  scoping: config.scoping,
  studies: config.studies,
}
const SETS: Record<string, string[]> = {
  'album:A': ['1.1', '1.2'],
  'album:B': ['2.1'],
  'inbox:alice': ['3.1'],
  'albums:alice': ['A'],
}
const store = {
  albumStudies: async (a: string) => new Set(SETS[`album:${a}`] ?? []),
  inboxStudies: async (u: string) => new Set(SETS[`inbox:${u}`] ?? []),
  userAlbums: async (u: string) => SETS[`albums:${u}`] ?? [],
}
const decision = (scope: Scope): Decision => ({ tokenId: 'tok_1', user: 'alice', scope, perms: new Set() })
const ALBUM_A = decision({ kind: 'album', album: 'A' })
const USER = decision({ kind: 'user', user: 'alice' })

async function plan(d: Decision, url: string, method = 'GET'): Promise<Plan> {
  const route = matchRoute(routes, method, url)
  const view: RequestView = {
    method,
    rawUrl: url,
    host: 'gate:8080',
    encrypted: false,
    remoteAddress: '127.0.0.1',
    // Where the client connected: the host tokengate names upstream in Forwarded.
    localAddress: 'gate',
    localPort: 8080,
  }
  return planRequest(route, d, view, cfg, store)
}

t.test(
  'a search is narrowed to the visible studies, other parameters kept, album/inbox dropped',
  async (t) => {
    const p = await plan(ALBUM_A, '/api/studies?PatientID=7&album=A&limit=2')
    t.equal(p.kind, 'forward')
    t.equal(p.patch.path, '/studies?PatientID=7&limit=2&StudyInstanceUID=1.1,1.2')
    const user = await plan(USER, '/api/series')
    t.equal(
      user.patch.path,
      '/series?StudyInstanceUID=3.1,1.1,1.2',
      'a user without ?album=: inbox and albums',
    )
    const under = await plan(ALBUM_A, '/api/studies/1.2/series?StudyInstanceUID=1.1,1.2')
    t.equal(under.patch.path, '/studies/1.2/series?StudyInstanceUID=1.2', 'the path study pins the list')
  },
)

t.test('nothing visible left: an empty answer, planned without the upstream', async (t) => {
  t.equal((await plan(ALBUM_A, '/api/studies?StudyInstanceUID=2.1')).kind, 'empty')
  t.equal((await plan(decision({ kind: 'album', album: 'none' }), '/api/instances')).kind, 'empty')
})

t.test('a list too long for one URL is split, with limit raised to offset + limit per search', async (t) => {
  SETS['album:big'] = Array.from({ length: 80 }, (_, i) => `1.2.840.${10000 + i}`)
  const p = await plan(decision({ kind: 'album', album: 'big' }), '/api/studies?PatientID=7&offset=3&limit=4')
  if (p.kind !== 'split') throw new Error(`expected a split plan, got ${p.kind}`)
  t.equal(p.offset, 3)
  t.equal(p.limit, 4)
  t.ok(p.searches.length > 1)
  for (const s of p.searches) {
    t.ok(`/dicom-web${s}`.length <= 600, s)
    t.match(s, /^\/studies\?PatientID=7&limit=7&StudyInstanceUID=/)
  }
  t.same(
    p.searches.flatMap((s) => (s.split('StudyInstanceUID=')[1] as string).split(',')),
    SETS['album:big'],
  )
})

t.test(
  'study paths and WADO-URI need a visible study; anything not addressable by study is 404',
  async (t) => {
    t.equal((await plan(ALBUM_A, '/api/studies/1.1/metadata')).kind, 'forward')
    t.equal((await plan(USER, '/api/studies/3.1/series/9/instances/8/rendered')).kind, 'forward')
    const wado = await plan(ALBUM_A, '/api/wado?requestType=WADO&studyUID=1.2&seriesUID=9&objectUID=8')
    t.match(
      wado,
      { kind: 'wado', study: '1.2', series: '9', object: '8' },
      'checked against the archive next',
    )
    for (const url of [
      '/api/studies/2.1/metadata',
      '/api/studies/2.1/series',
      '/api/wado?requestType=WADO&studyUID=2.1&objectUID=8',
      '/api/wado?requestType=WADO&objectUID=8',
      '/api/series/9/metadata',
    ]) {
      await t.rejects(plan(ALBUM_A, url), OutOfScope, url)
    }
    // A second spelling of studyUID is refused before any study set is read (canonical-query.ts).
    const twice = '/api/wado?requestType=WADO&studyUID=1.2&StudyUID=2.1&objectUID=8'
    await t.rejects(plan(ALBUM_A, twice), AmbiguousRequest, twice)
  },
)

t.test('a STOW-RS is a guarded store into the album, or the inbox of a user token', async (t) => {
  const a = await plan(ALBUM_A, '/api/studies', 'POST')
  t.match(a, { kind: 'store', into: { kind: 'album', album: 'A' } })
  const u = await plan(USER, '/api/studies/9.9', 'POST')
  t.match(u, { kind: 'store', into: { kind: 'inbox', user: 'alice' } })
  const ua = await plan(decision({ kind: 'user-album', user: 'alice', album: 'A' }), '/api/studies', 'POST')
  t.match(ua, { kind: 'store', into: { kind: 'album', album: 'A' } })
  // What the token may write to without asking the archive: what it may see.
  if (a.kind === 'store') t.ok(a.visible.has('1.2') && !a.visible.has('2.1'))
})

t.test(
  'DICOM JSON answers get URL rewriting and no compression upstream; other answers neither',
  async (t) => {
    const search = await plan(ALBUM_A, '/api/studies')
    t.ok(search.patch.response?.urls)
    t.ok(search.patch.removeHeaders.includes('accept-encoding'))
    const meta = await plan(ALBUM_A, '/api/studies/1.1/metadata')
    t.same(meta.patch.response?.urls?.bases.map(([from]) => from).sort(), [
      'http://"gate:8080"/dicom-web',
      'http://"gate:8080"/wado',
      'http://gate:8080/dicom-web',
      'http://gate:8080/wado',
      'http://pacs:8042/dicom-web',
      'http://pacs:8042/wado',
    ])
    t.ok(
      meta.patch.response?.urls?.bases.every(
        ([from, to]) =>
          to === (from.endsWith('/wado') ? 'http://gate:8080/api/wado' : 'http://gate:8080/api'),
      ),
    )
    const frames = await plan(ALBUM_A, '/api/studies/1.1/series/2/instances/3/frames/1')
    t.same(frames.patch.response, { uniformNotFound: true }, 'no URL rewriting; only its own 404s')
    t.notOk(frames.patch.removeHeaders.includes('accept-encoding'))
  },
)
