// WADO-URI query normalisation: values re-encoded with the fewest escapes, so Orthanc 1.10 sees
// `contentType=image/jpeg`; everything else keeps its meaning (and, where it can, its bytes).
import t from 'tap'
import { normalizeWadoQuery } from '../../../src/rewrite/wado-query.js'

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
