// WADO-URI query normalisation: values re-encoded with the fewest escapes, so Orthanc 1.10 sees
// `contentType=image/jpeg`; everything else keeps its meaning (and, where it can, its bytes).
// And the scope parameters (studies mode): exact, case-sensitive names only (PS3.18 §9.2), every
// near-spelling refused as ambiguous.
import t from 'tap'
import { GateError } from '../../../src/errors.js'
import { parseQuery } from '../../../src/rewrite/canonical-query.js'
import { normalizeWadoQuery, readWadoUids } from '../../../src/rewrite/wado-query.js'

t.test('escapes a query may carry as plain characters are decoded, the rest stay encoded', async (t) => {
  const cases: [string, string, string][] = [
    ['an encoded slash in contentType', 'contentType=image%2Fjpeg', 'contentType=image/jpeg'],
    ['lower-case escapes', 'contentType=image%2fjpeg', 'contentType=image/jpeg'],
    ['an encoded unreserved character', 'objectUID=1%2E2%2E3', 'objectUID=1.2.3'],
    ['an encoded & stays encoded', 'x=a%26b', 'x=a%26b'],
    ['an encoded = stays encoded', 'x=a%3Db', 'x=a%3Db'],
    ['an encoded + stays encoded', 'x=a%2Bb', 'x=a%2Bb'],
    ['an encoded # stays encoded', 'x=a%23b', 'x=a%23b'],
    ['an encoded space stays encoded', 'x=a%20b', 'x=a%20b'],
    ['a raw + (form space) stays a raw +', 'x=a+b%2Fc', 'x=a+b/c'],
    ['non-ASCII is re-encoded as UTF-8', 'x=%C3%A9%2F', 'x=%C3%A9/'],
    [
      'an encoded ; and , are kept plain',
      'contentType=image%2Fjpeg%3Bq%3D0.5%2Cimage%2Fpng',
      'contentType=image/jpeg;q%3D0.5,image/png',
    ],
  ]
  for (const [name, query, want] of cases) t.equal(normalizeWadoQuery(query), want, name)
})

t.test('other parameters are untouched, names included, and order is kept', async (t) => {
  const q =
    'requestType=WADO&studyUID=1.2.3&seriesUID=1.2.3.4&objectUID=1.2.3.4.5&contentType=image%2Fjpeg&x=a+b&%61=%41'
  t.equal(
    normalizeWadoQuery(q),
    'requestType=WADO&studyUID=1.2.3&seriesUID=1.2.3.4&objectUID=1.2.3.4.5&contentType=image/jpeg&x=a+b&%61=A',
  )
})

t.test('a query without any escape is returned as the same string', async (t) => {
  for (const q of ['', 'requestType=WADO&studyUID=1.2.3', 'a&&b=&=c', 'x=a+b'])
    t.equal(normalizeWadoQuery(q), q, q)
})

t.test('an undecodable value is forwarded untouched for the upstream to judge', async (t) => {
  const cases: [string, string][] = [
    ['x=%zz&contentType=image%2Fjpeg', 'x=%zz&contentType=image/jpeg'],
    ['x=%E0%A4%A', 'x=%E0%A4%A'],
    ['x=100%', 'x=100%'],
    ['flag%2F&y=%2F', 'flag%2F&y=/'],
  ]
  for (const [query, want] of cases) t.equal(normalizeWadoQuery(query), want, query)
})

t.test('normalising twice changes nothing more', async (t) => {
  const once = normalizeWadoQuery('contentType=image%2Fjpeg&x=a%26b%20c+d&y=%C3%A9')
  t.equal(normalizeWadoQuery(once), once)
})

/** readWadoUids over a raw query, read by the one query parser first (as route/match.ts does). */
const read = (raw: string) => readWadoUids(parseQuery(raw))

t.test('the scope UIDs are read by their exact names only', async (t) => {
  t.same(read('requestType=WADO&studyUID=1.2&seriesUID=1.2.3&objectUID=1.2.3.4&contentType=image%2Fjpeg'), {
    study: '1.2',
    series: '1.2.3',
    object: '1.2.3.4',
  })
  t.same(read('requestType=WADO&objectUID=5.6'), { study: null, series: null, object: '5.6' })
  t.same(read(''), { study: null, series: null, object: null })
  // Names that merely contain a reserved one are other parameters.
  t.same(read('studyUIDs=1&xstudyUID=2&studyUID=3.4'), { study: '3.4', series: null, object: null })
})

/** The error class a query is refused with, reading it (null: accepted). */
function refusal(query: string): string | null {
  try {
    read(query)
    return null
  } catch (err) {
    return err instanceof GateError ? err.constructor.name : 'not a GateError'
  }
}

t.test('near-spellings of a reserved name, and a reserved name twice, are ambiguous', async (t) => {
  const near = [
    'StudyUID',
    'STUDYUID',
    'studyuid',
    'studyUID+',
    '+studyUID',
    '%20studyUID',
    'studyUID%20',
    '%73tudyUID',
    '%2573tudyUID',
    'studyUID[]',
    'studyUID%5B%5D',
    'studyUID%00',
    '%09studyUID',
    'ObjectUID',
    'objectuid',
    'SERIESUID',
    'seriesUID%2B',
  ]
  for (const name of near) t.equal(refusal(`studyUID=1.2&${name}=3.4`), 'AmbiguousRequest', name)
  t.equal(refusal('studyUID=1.2&studyUID=1.2'), 'AmbiguousRequest', 'twice')
  t.equal(refusal('objectUID=1&objectUID=2'), 'AmbiguousRequest')
})

t.test('a scope value must be a UID once decoded: no spaces, no signs, no letters', async (t) => {
  for (const value of ['1.2+', ' 1.2', '%201.2', '1.2.x', '', '1..2']) {
    t.equal(refusal(`studyUID=${value}`), 'BadRequest', JSON.stringify(value))
  }
  // An escaped digit or dot decodes to the same UID, and the upstream receives it plain.
  t.same(read('studyUID=%31.2%2E3'), { study: '1.2.3', series: null, object: null })
})
