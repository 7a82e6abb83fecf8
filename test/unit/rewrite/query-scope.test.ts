// scoping: query. The query is read once by canonical-query.ts (which refuses every spelling of
// album/inbox but the exact one); readScopeRequest reads the exact ones and scopeQuery drops them
// all and appends the decided scope, keeping the rest in order and in canonical spelling.
import t from 'tap'
import { AmbiguousRequest, BadRequest, type GateError } from '../../../src/errors.js'
import type { Decision, Scope } from '../../../src/policy/decide.js'
import { parseQuery } from '../../../src/rewrite/canonical-query.js'
import {
  readScopeRequest as readParsed,
  scopeQuery as scopeParsed,
  stripScopeParams,
} from '../../../src/rewrite/query-scope.js'

const decision = (scope: Scope): Decision => ({ tokenId: 'tok_1', user: 'alice', scope, perms: new Set() })
const ALBUM_A1 = decision({ kind: 'album', album: 'A1' })
const USER_ALBUM = decision({ kind: 'user-album', user: 'alice', album: 'A2' })
const INBOX = decision({ kind: 'inbox', user: 'alice' })
const USER = decision({ kind: 'user', user: 'alice' })

const readScopeRequest = (q: string) => readParsed(parseQuery(q))
const scopeQuery = (q: string, d: Decision) => scopeParsed(parseQuery(q), d)

function thrown(fn: () => unknown): GateError | undefined {
  try {
    fn()
  } catch (err) {
    return err as GateError
  }
  return undefined
}

t.test('readScopeRequest reads the exact album and inbox parameters, repeated or not', async (t) => {
  const cases: [string, string, string[], boolean][] = [
    ['no query', '', [], false],
    ['unrelated parameters', 'limit=10&offset=5', [], false],
    ['one album', 'album=A1', ['A1'], false],
    ['repeated album with two ids', 'album=a&album=b', ['a', 'b'], false],
    ['repeated album with one id', 'album=a&album=a', ['a'], false],
    ['value with + and escapes', 'album=my+album%2F1', ['my album/1'], false],
    ['an encoded +', 'album=a%2Bb', ['a+b'], false],
    ['inbox=true', 'inbox=true', [], true],
    ['inbox=TRUE', 'inbox=TRUE', [], true],
    ['inbox=false', 'inbox=false', [], false],
    ['inbox with no value', 'inbox', [], false],
    ['inbox= empty', 'inbox=', [], false],
    ['album and inbox together', 'inbox=true&album=x', ['x'], true],
    ['among other parameters', 'limit=1&album=a&StudyDate=2020%2D01&inbox=true', ['a'], true],
    ['names that only contain album', 'albums=a&myalbum=b&album_id=c', [], false],
  ]
  for (const [name, query, albums, inbox] of cases) {
    t.same(readScopeRequest(query), { albums, inbox }, name)
  }
})

t.test('other spellings of album and inbox never reach readScopeRequest: they are ambiguous', async (t) => {
  for (const q of ['ALBUM=a', 'Album=a', '%61lbum=a', 'alb%75m=a', 'album+=a', '%20album=a', 'Inbox=true']) {
    const err = thrown(() => readScopeRequest(q))
    t.type(err, AmbiguousRequest, q)
    t.equal(err?.reason, 'reserved_spelling', `${q}: reserved_spelling`)
  }
  for (const q of ['%zzlbum=a', 'album%=a', 'album=%zz', 'PatientName=%zz&album=a', 'inbox=%E0%A4%A']) {
    t.equal(thrown(() => readScopeRequest(q))?.reason, 'bad_escape', `${q}: bad_escape`)
  }
})

t.test('readScopeRequest refuses values it cannot read as BadRequest bad_query (fail closed)', async (t) => {
  const cases: [string, string][] = [
    ['inbox=maybe', 'inbox=maybe'],
    ['inbox=1', 'inbox=1'],
    ['inbox=yes', 'inbox=yes'],
    ['an empty album', 'album='],
    ['album with no value', 'album'],
  ]
  for (const [name, query] of cases) {
    const err = thrown(() => readScopeRequest(query))
    t.type(err, BadRequest, name)
    t.equal(err?.reason, 'bad_query', `${name}: bad_query`)
  }
})

t.test('scopeQuery removes every client album/inbox and appends the decided scope', async (t) => {
  const cases: [string, string, Decision, string][] = [
    ['album token, no query', '', ALBUM_A1, 'album=A1'],
    ['album token, own album', 'album=A1', ALBUM_A1, 'album=A1'],
    ['album token, repeated', 'album=a&album=b&limit=1', ALBUM_A1, 'limit=1&album=A1'],
    ['album token, inbox given', 'inbox=true&inbox=false&inbox', ALBUM_A1, 'album=A1'],
    ['user-album', 'album=A2&limit=5', USER_ALBUM, 'limit=5&album=A2'],
    ['inbox', 'inbox=TRUE&limit=5', INBOX, 'limit=5&inbox=true'],
    ['user scope adds nothing', 'limit=5&album=A2', USER, 'limit=5'],
    ['user scope, only scope parameters', 'album=a&inbox=false', USER, ''],
    ['user scope, no query', '', USER, ''],
  ]
  for (const [name, query, d, want] of cases) {
    t.equal(scopeQuery(query, d), want, name)
  }
  t.equal(
    stripScopeParams(parseQuery('a=1&album=x&b=%41')),
    'a=1&b=A',
    'studies mode: scope dropped, no scope added',
  )
  t.equal(stripScopeParams(parseQuery('a=1&b=2')), 'a=1&b=2')
})

t.test('every other parameter is kept in order, in its canonical spelling', async (t) => {
  const cases: [string, string][] = [
    [
      'StudyDate=20200101-&includefield=all&limit=10',
      'StudyDate=20200101-&includefield=all&limit=10&album=A1',
    ],
    ['album=x&StudyDate=2020%2D01&limit=10', 'StudyDate=2020-01&limit=10&album=A1'],
    ['PatientName=Doe%5EJohn&x=a+b&y=%7Ba%7D&&z', 'PatientName=Doe%5EJohn&x=a+b&y=%7Ba%7D&z&album=A1'],
    ['albumx=1&myalbum=2&inboxes=3', 'albumx=1&myalbum=2&inboxes=3&album=A1'],
    ['00100010=Doe*&00080020=20200101-', '00100010=Doe*&00080020=20200101-&album=A1'],
    ['a=%26&b=%3D&c=%2B&d=%23&e=%3B', 'a=%26&b=%3D&c=%2B&d=%23&e=%3B&album=A1'],
  ]
  for (const [query, want] of cases) {
    t.equal(scopeQuery(query, ALBUM_A1), want, query)
  }
})

t.test('the appended album id is percent-encoded and reads back as itself', async (t) => {
  const cases: [string, string][] = [
    ['a b', 'album=a%20b'],
    ['a&inbox=true', 'album=a%26inbox%3Dtrue'],
    ['x/y?z#w', 'album=x/y?z%23w'],
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
  const tampered = 'album=a&album=b&inbox=TRUE&inbox=true&limit=1'
  t.same(readScopeRequest(scopeQuery(tampered, ALBUM_A1)), { albums: ['A1'], inbox: false })
  t.same(readScopeRequest(scopeQuery(tampered, INBOX)), { albums: [], inbox: true })
  t.same(readScopeRequest(scopeQuery(tampered, USER)), { albums: [], inbox: false })
})
