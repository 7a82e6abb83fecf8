// The audit trail's pure parts (admin/audit.ts): what an entry stores (ids and names, never
// undefined or empty values), how a stored entry reads back, and how `since` / `limit` (shared by
// `tokengate audit` and `GET /audit`) are read or refused.
import t from 'tap'
import { auditQuery, checkActor, decodeEntry, encodeFields } from '../../../src/admin/audit.js'
import { AdminInputError } from '../../../src/admin/input-error.js'

const NOW = Date.parse('2027-03-10T12:00:00Z')

/** The field of the AdminInputError `fn` throws (a failure when it throws nothing or something else). */
function refusedField(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof AdminInputError) return err.field
    throw err
  }
  throw new Error('expected an AdminInputError')
}

t.test('an entry stores the actor first, then only the facts that have a value', async (t) => {
  t.same(
    encodeFields(
      { name: 'admin-api', client: '127.0.0.1' },
      {
        op: 'token.create',
        tokenId: 'tok_1',
        kind: 'album',
        user: '',
        album: 'A1',
        perms: ['read', 'write'],
        expiresAt: '2027-04-01T00:00:00.000Z',
      },
    ),
    [
      ...['actor', 'admin-api', 'client', '127.0.0.1', 'op', 'token.create', 'tokenId', 'tok_1'],
      ...['kind', 'album', 'album', 'A1', 'perms', 'read,write', 'expiresAt', '2027-04-01T00:00:00.000Z'],
    ],
  )
  t.same(encodeFields({ name: 'jane' }, { op: 'album.add-member', album: 'A', user: 'u', changed: false }), [
    ...['actor', 'jane', 'op', 'album.add-member', 'album', 'A', 'user', 'u', 'changed', 'false'],
  ])
})

t.test('a stored entry reads back with its time from the id and typed fields', async (t) => {
  const fields = encodeFields({ name: 'jane' }, { op: 'token.revoke-user', user: 'bob', count: 3 })
  t.same(decodeEntry(`${NOW}-0`, fields), {
    id: `${NOW}-0`,
    at: '2027-03-10T12:00:00.000Z',
    actor: 'jane',
    op: 'token.revoke-user',
    user: 'bob',
    count: 3,
  })
  const created = decodeEntry(`${NOW}-1`, [
    'actor',
    'a',
    'op',
    'token.create',
    'perms',
    'read',
    'changed',
    'true',
  ])
  t.same([created.perms, created.changed], [['read'], true])
  t.equal(
    decodeEntry(`${NOW}-2`, ['actor', 'a', 'op', 'x', 'studies', '3', 'at', 'forged']).at,
    '2027-03-10T12:00:00.000Z',
    'a stored `at` cannot override the time of the id',
  )
  t.equal(
    decodeEntry(`${NOW}-2`, ['actor', 'a', 'op', 'x', 'studies', '3']).studies,
    '3',
    'newer fields pass through',
  )
})

t.test('since is a duration back from now or an ISO date; limit defaults to 100', async (t) => {
  t.same(auditQuery({}, NOW), { limit: 100 })
  t.same(auditQuery({ since: '1h' }, NOW), { since: NOW - 3_600_000, limit: 100 })
  t.same(auditQuery({ since: ' 7d ', limit: '5' }, NOW), { since: NOW - 7 * 86_400_000, limit: 5 })
  t.same(auditQuery({ since: '2027-03-01' }, NOW), { since: Date.parse('2027-03-01T00:00:00Z'), limit: 100 })
  t.same(auditQuery({ since: '2027-03-01T10:30:00+02:00', limit: 10_000 }, NOW), {
    since: Date.parse('2027-03-01T08:30:00Z'),
    limit: 10_000,
  })
})

const refused: [string, { since?: string; limit?: string | number }, string][] = [
  ['a word', { since: 'yesterday' }, 'since'],
  ['a bare number (seconds or milliseconds?)', { since: '3600' }, 'since'],
  ['a day the calendar lacks', { since: '2027-02-30' }, 'since'],
  ['an empty since', { since: '' }, 'since'],
  ['a zero limit', { limit: '0' }, 'limit'],
  ['a limit over 10000', { limit: 10_001 }, 'limit'],
  ['a fractional limit', { limit: '2.5' }, 'limit'],
  ['a negative limit', { limit: '-1' }, 'limit'],
]
for (const [what, input, field] of refused) {
  t.test(`${what} is refused, naming the ${field} field`, async (t) => {
    t.equal(
      refusedField(() => auditQuery(input, NOW)),
      field,
    )
  })
}

t.test('an actor is 1 to 256 characters without control characters', async (t) => {
  t.equal(checkActor('ldap:jane.doe'), 'ldap:jane.doe', "':' is fine: the actor names no key")
  for (const bad of ['', '  ', 'x'.repeat(257), 'jane\nforged line']) {
    t.equal(
      refusedField(() => checkActor(bad)),
      'actor',
      JSON.stringify(bad),
    )
  }
})
