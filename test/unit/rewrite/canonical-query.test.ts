// The one query parser (rewrite/canonical-query.ts): what it reads, what it refuses, and the
// canonical spelling it gives back, which every later stage and the upstream receive.
import t from 'tap'
import { AmbiguousRequest } from '../../../src/errors.js'
import {
  encodeQueryComponent,
  nameSkeleton,
  parseQuery,
  queryValues,
  reservedNameOf,
  serializeQuery,
} from '../../../src/rewrite/canonical-query.js'

t.test('each pair is read once: decoded name and value, canonical text', async (t) => {
  const q = parseQuery('PatientName=D%C3%B6e+J&limit=5&flag&x=a%3Db&%5Bk%5D=%7Bv%7D')
  t.same(
    q.params.map((p) => [p.name, p.value, p.text]),
    [
      ['PatientName', 'Döe J', 'PatientName=D%C3%B6e+J'],
      ['limit', '5', 'limit=5'],
      ['flag', '', 'flag'],
      ['x', 'a=b', 'x=a%3Db'],
      ['[k]', '{v}', '%5Bk%5D=%7Bv%7D'],
    ],
  )
  t.equal(q.text, 'PatientName=D%C3%B6e+J&limit=5&flag&x=a%3Db&%5Bk%5D=%7Bv%7D')
  t.same(queryValues(parseQuery('a=1&b=2&a=3'), 'a'), ['1', '3'])
  t.equal(parseQuery('').text, '')
})

t.test(
  'a plain query comes back as the same string; empty pairs and extra = are canonicalised',
  async (t) => {
    const plain = 'StudyDate=20200101-&includefield=00081030&limit=10&q=a+b&r=x/y?z'
    t.equal(parseQuery(plain).text, plain)
    t.equal(parseQuery('&a=1&&b=2&').text, 'a=1&b=2')
    t.equal(parseQuery('a=b=c').text, 'a=b%3Dc')
    t.equal(parseQuery(parseQuery('a=b=c&d=%41').text).text, 'a=b%3Dc&d=A', 'a fixed point')
  },
)

t.test('the skeleton folds case, escapes, brackets, punctuation and Unicode look-alikes', async (t) => {
  const cases: [string, string][] = [
    ['ALBUM', 'album'],
    ['album[]', 'album'],
    ['[album]', 'album'],
    [' [album]', 'album'],
    ['-.album', 'album'],
    ['albüm', 'album'],
    ['album.x', 'album'],
    [' album ', 'album'],
    ['al-bum', 'album'],
    ['0020,000D', '0020000d'],
    ['(0020,000D)', '0020000d'],
    ['0x0020000D', '0020000d'],
    ['ſtudyUID', 'studyuid'],
    ['ınbox', 'inbox'],
    ['İnbox', 'inbox'],
    ['ａｌｂｕｍ', 'album'],
    ['alb\u00adum', 'album'],
    ['PatientName', 'patientname'],
  ]
  for (const [name, skeleton] of cases) t.equal(nameSkeleton(name), skeleton, JSON.stringify(name))
  t.equal(reservedNameOf('album'), 'album')
  t.equal(reservedNameOf('Album'), 'album')
  t.equal(reservedNameOf('0x0020000D'), '0020000D')
  t.equal(reservedNameOf('x0020000D'), '0020000D')
  t.equal(reservedNameOf('0020|000D'), '0020000D')
  t.equal(reservedNameOf('limit'), null)
  t.equal(reservedNameOf('albums'), null)
})

t.test('refusals name the rule that was broken', async (t) => {
  const cases: [string, string][] = [
    ['album[]=B', 'reserved_spelling'],
    ['STUDYUID=1', 'reserved_spelling'],
    ['studyUID=1&studyUID=1', 'repeated_param'],
    ['a=1;b=2', 'query_separator'],
    ['a%3Bb=1', 'query_separator'],
    ['a=1#', 'fragment'],
    ['a%09=1', 'control_char'],
    ['a=%C2%85', 'control_char'],
    ['a=\u00e9', 'non_ascii'],
    ['%2561=1', 'double_encoding'],
    ['album=%2541', 'double_encoding'],
    ['a=%E0%A4%A', 'bad_escape'],
  ]
  for (const [raw, reason] of cases) {
    t.throws(() => parseQuery(raw), AmbiguousRequest, raw)
    try {
      parseQuery(raw)
    } catch (err) {
      t.equal((err as AmbiguousRequest).reason, reason, `${raw}: ${reason}`)
    }
  }
  t.doesNotThrow(() => parseQuery('PatientName=%2541'), 'values of other names may hold escaped escapes')
})

t.test('serializeQuery appends encoded pairs; encodeQueryComponent escapes what a query must', async (t) => {
  const q = parseQuery('limit=1')
  t.equal(serializeQuery(q.params, [['album', 'a+b c&d']]), 'limit=1&album=a%2Bb%20c%26d')
  t.equal(serializeQuery([], [['inbox', 'true']]), 'inbox=true')
  t.equal(encodeQueryComponent("1.2.3-_~!$'()*,:@/?"), "1.2.3-_~!$'()*,:@/?")
  t.equal(encodeQueryComponent('a=b;c#d%e[f]'), 'a%3Db%3Bc%23d%25e%5Bf%5D')
})
