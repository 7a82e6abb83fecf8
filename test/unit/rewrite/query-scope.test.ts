// scoping: query. A client may spell album/inbox any way an upstream might still read as album or
// inbox; readScopeRequest must see every spelling and scopeQuery must remove every one of them,
// keeping the rest of the query byte for byte and in order.
import t from 'tap'
import { BadRequest, type GateError } from '../../../src/errors.js'
import type { Decision, Scope } from '../../../src/policy/decide.js'
import { readScopeRequest, scopeQuery } from '../../../src/rewrite/query-scope.js'

const decision = (scope: Scope): Decision => ({ tokenId: 'tok_1', user: 'alice', scope, perms: new Set() })
const ALBUM_A1 = decision({ kind: 'album', album: 'A1' })
const USER_ALBUM = decision({ kind: 'user-album', user: 'alice', album: 'A2' })
const INBOX = decision({ kind: 'inbox', user: 'alice' })
const USER = decision({ kind: 'user', user: 'alice' })

function thrown(fn: () => unknown): GateError | undefined {
  try {
    fn()
  } catch (err) {
    return err as GateError
  }
  return undefined
}

t.test('readScopeRequest folds every spelling of album and inbox', async (t) => {
  const cases: [string, string, string[], boolean][] = [
    ['no query', '', [], false],
    ['unrelated parameters', 'limit=10&offset=5', [], false],
    ['one album', 'album=A1', ['A1'], false],
    ['repeated album with two ids', 'album=a&album=b', ['a', 'b'], false],
    ['repeated album with one id', 'album=a&album=a', ['a'], false],
    ['upper case name', 'ALBUM=a', ['a'], false],
    ['mixed case name', 'Album=a&aLbUm=b', ['a', 'b'], false],
    ['percent-encoded first letter', '%61lbum=a', ['a'], false],
    ['percent-encoded later letter', 'alb%75m=a', ['a'], false],
    ['percent-encoded upper case', '%41LBUM=a', ['a'], false],
    ['whole name encoded', '%61%6C%62%75%6D=a', ['a'], false],
    ['+ after the name', 'album+=a', ['a'], false],
    ['encoded space before the name', '%20album=a', ['a'], false],
    ['value with + and escapes', 'album=my+album%2F1', ['my album/1'], false],
    ['inbox=true', 'inbox=true', [], true],
    ['inbox=TRUE', 'inbox=TRUE', [], true],
    ['Inbox=True', 'Inbox=True', [], true],
    ['encoded inbox name', '%69nbox=true', [], true],
    ['inbox=false', 'inbox=false', [], false],
    ['inbox with no value', 'inbox', [], false],
    ['inbox= empty', 'inbox=', [], false],
    ['album and inbox together', 'inbox=true&album=x', ['x'], true],
    ['among other parameters', 'limit=1&album=a&StudyDate=2020%2D01&inbox=true', ['a'], true],
    ['names that only contain album', 'albums=a&myalbum=b&album_id=c', [], false],
    ['undecodable value of another parameter', 'PatientName=%zz&album=a', ['a'], false],
  ]
  for (const [name, query, albums, inbox] of cases) {
    t.same(readScopeRequest(query), { albums, inbox }, name)
  }
})

t.test('readScopeRequest refuses what it cannot read as BadRequest bad_query (fail closed)', async (t) => {
  const cases: [string, string][] = [
    ['inbox=maybe', 'inbox=maybe'],
    ['inbox=1', 'inbox=1'],
    ['inbox=yes', 'inbox=yes'],
    ['an undecodable name', '%zzlbum=a'],
    ['an undecodable name that is not album', 'x%zz=1'],
    ['a truncated escape in a name', 'album%=a'],
    ['an undecodable album value', 'album=%zz'],
    ['an undecodable inbox value', 'inbox=%E0%A4%A'],
    ['an empty album', 'album='],
    ['album with no value', 'album'],
  ]
  for (const [name, query] of cases) {
    const err = thrown(() => readScopeRequest(query))
    t.type(err, BadRequest, name)
    t.equal(err?.reason, 'bad_query', `${name}: bad_query`)
  }
})

t.test('scopeQuery removes every client spelling and appends the decided scope', async (t) => {
  const cases: [string, string, Decision, string][] = [
    ['album token, no query', '', ALBUM_A1, 'album=A1'],
    ['album token, own album', 'album=A1', ALBUM_A1, 'album=A1'],
    ['album token, repeated and varied', 'album=a&ALBUM=b&Album=c&%61lbum=d&alb%75m=e', ALBUM_A1, 'album=A1'],
    ['album token, + trick', 'album+=x&limit=1', ALBUM_A1, 'limit=1&album=A1'],
    ['album token, inbox spellings', 'inbox=true&INBOX=TRUE&%69nbox=false&inbox', ALBUM_A1, 'album=A1'],
    ['user-album', 'album=A2&limit=5', USER_ALBUM, 'limit=5&album=A2'],
    ['inbox', 'inbox=TRUE&limit=5', INBOX, 'limit=5&inbox=true'],
    ['inbox, album spelled oddly', 'inbox=true&%41lbum=zzz', INBOX, 'inbox=true'],
    ['user scope adds nothing', 'limit=5&album=A2', USER, 'limit=5'],
    ['user scope, only scope parameters', 'album=a&inbox=false', USER, ''],
    ['user scope, no query', '', USER, ''],
  ]
  for (const [name, query, d, want] of cases) {
    t.equal(scopeQuery(query, d), want, name)
  }
})

t.test('every other parameter is kept byte for byte and in order', async (t) => {
  const others = 'StudyDate=2020%2D01&includefield=all&limit=10'
  const cases: [string, string][] = [
    [`${others}`, `${others}&album=A1`],
    [`album=x&${others}`, `${others}&album=A1`],
    [`StudyDate=2020%2D01&album=x&includefield=all&ALBUM=y&limit=10`, `${others}&album=A1`],
    [
      'PatientName=Doe%5EJohn&x=a+b&y=%7Ba%7D&&z&q=%zz',
      'PatientName=Doe%5EJohn&x=a+b&y=%7Ba%7D&&z&q=%zz&album=A1',
    ],
    ['albumx=1&myalbum=2&inboxes=3', 'albumx=1&myalbum=2&inboxes=3&album=A1'],
    ['00100010=Doe*&00080020=20200101-', '00100010=Doe*&00080020=20200101-&album=A1'],
  ]
  for (const [query, want] of cases) {
    t.equal(scopeQuery(query, ALBUM_A1), want, query)
  }
})

t.test('the appended album id is percent-encoded', async (t) => {
  const cases: [string, string][] = [
    ['a b', 'album=a%20b'],
    ['a&inbox=true', 'album=a%26inbox%3Dtrue'],
    ['x/y?z#w', 'album=x%2Fy%3Fz%23w'],
    ['a+b', 'album=a%2Bb'],
    ['é', 'album=%C3%A9'],
    ['plain-id_1.2~3', 'album=plain-id_1.2~3'],
  ]
  for (const [album, want] of cases) {
    const out = scopeQuery('', decision({ kind: 'album', album }))
    t.equal(out, want, JSON.stringify(album))
    t.same(readScopeRequest(out).albums, [album], `${JSON.stringify(album)} reads back as itself`)
  }
})

t.test('the rewritten query reads back as exactly the decided scope', async (t) => {
  const tampered = 'album=a&ALBUM=b&%61lbum=c&alb%75m=d&album+=e&inbox=TRUE&In%62ox=true&limit=1'
  t.same(readScopeRequest(scopeQuery(tampered, ALBUM_A1)), { albums: ['A1'], inbox: false })
  t.same(readScopeRequest(scopeQuery(tampered, INBOX)), { albums: [], inbox: true })
  t.same(readScopeRequest(scopeQuery(tampered, USER)), { albums: [], inbox: false })
})

t.test('scopeQuery refuses an undecodable parameter name rather than guess (bad_query)', async (t) => {
  const err = thrown(() => scopeQuery('%zzlbum=a&limit=1', ALBUM_A1))
  t.type(err, BadRequest)
  t.equal(err?.reason, 'bad_query')
})
