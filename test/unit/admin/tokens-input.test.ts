// Token administration input checks (admin/tokens.ts), with no Redis: what `token create` accepts,
// what it refuses and with which message, how names are checked, and how a record is shown.
import t from 'tap'
import {
  AdminInputError,
  AdminNotFound,
  type CreateInput,
  checkName,
  checkTokenId,
  newTokenId,
  statusOf,
  toInfo,
  validateCreate,
} from '../../../src/admin/tokens.js'
import type { TokenRecord } from '../../../src/token/record.js'
import { refusal } from '../../helpers/admin-input.js'

const NOW = Date.UTC(2026, 0, 1)
const DAY = 86_400_000

const album = (extra: Partial<CreateInput> = {}): CreateInput => ({
  kind: 'album',
  album: 'A1',
  perms: 'read',
  expiresIn: '30d',
  ...extra,
})

t.test('an album token keeps the permissions asked for, in canonical order', async (t) => {
  const v = validateCreate(album({ perms: 'download, read' }), NOW)
  t.same([...v.perms], ['read', 'download'])
  t.equal(v.album, 'A1')
  t.equal(v.user, '', 'the owner is optional on album tokens')
  t.equal(v.expiresAt, NOW + 30 * DAY)
})

t.test('permissions may be given as an array', async (t) => {
  t.same([...validateCreate(album({ perms: ['write', 'read'] }), NOW).perms], ['read', 'write'])
})

t.test('a user token gets all four permissions', async (t) => {
  const v = validateCreate({ kind: 'user', user: 'alice', expiresIn: '1h' }, NOW)
  t.same([...v.perms].sort(), ['appropriate', 'download', 'read', 'write'])
  t.equal(v.album, '')
})

t.test('an ISO date or epoch milliseconds in the future is accepted as the expiry', async (t) => {
  t.equal(
    validateCreate(album({ expiresIn: undefined, expiresAt: '2027-01-31' }), NOW).expiresAt,
    Date.UTC(2027, 0, 31),
  )
  t.equal(
    validateCreate(album({ expiresIn: undefined, expiresAt: '2026-06-01T12:30:00+02:00' }), NOW).expiresAt,
    Date.UTC(2026, 5, 1, 10, 30),
  )
  t.equal(validateCreate(album({ expiresIn: undefined, expiresAt: NOW + 1 }), NOW).expiresAt, NOW + 1)
})

// Each row: what is wrong, the input, the field named, and a substring of the message.
const refused: [string, CreateInput, string, RegExp][] = [
  ['no expiry at all', album({ expiresIn: undefined }), 'expires', /expiry is mandatory.*30d.*2027-01-31/],
  ['both a date and a duration', album({ expiresAt: '2027-01-01' }), 'expires', /not both/],
  [
    'an expiry date in the past',
    album({ expiresIn: undefined, expiresAt: '2025-12-31' }),
    'expires',
    /not in the future/,
  ],
  ['an expiry of now', album({ expiresIn: undefined, expiresAt: NOW }), 'expires', /not in the future/],
  ['a zero duration', album({ expiresIn: '0d' }), 'expires', /zero/],
  ['a duration without a unit', album({ expiresIn: '30' }), 'expires', /"30" is not a duration/],
  ['a duration that is not one', album({ expiresIn: 'soon' }), 'expires', /"soon" is not a duration/],
  [
    'a date that does not exist',
    album({ expiresIn: undefined, expiresAt: '2027-02-30' }),
    'expires',
    /not a date/,
  ],
  [
    'a date in another format',
    album({ expiresIn: undefined, expiresAt: '31/01/2027' }),
    'expires',
    /not a date/,
  ],
  [
    'fractional epoch milliseconds',
    album({ expiresIn: undefined, expiresAt: NOW + 0.5 }),
    'expires',
    /whole milliseconds/,
  ],
  ['no kind', { expiresIn: '1d' } as CreateInput, 'kind', /--kind is required/],
  [
    'an unknown kind',
    album({ kind: 'admin' as 'album' }),
    'kind',
    /--kind must be "album", "user" or "api", got "admin"/,
  ],
  ['an album token without an album', album({ album: undefined }), 'album', /add --album/],
  [
    'an album token without permissions',
    album({ perms: undefined }),
    'perms',
    /at least one permission.*read,write,download,appropriate/,
  ],
  [
    'an album token with only commas as permissions',
    album({ perms: ' , ' }),
    'perms',
    /at least one permission/,
  ],
  [
    'an unknown permission',
    album({ perms: 'read,admin' }),
    'perms',
    /unknown permission "admin" in --perms; choose from read, write/,
  ],
  ['a user token without a user', { kind: 'user', expiresIn: '1d' }, 'user', /add --user/],
  [
    'a user token with permissions',
    { kind: 'user', user: 'u', perms: 'read', expiresIn: '1d' },
    'perms',
    /drop --perms/,
  ],
  [
    'a user token with an album',
    { kind: 'user', user: 'u', album: 'A', expiresIn: '1d' },
    'album',
    /drop --album.*add-member/,
  ],
  ['a description with a newline', album({ description: 'a\nb' }), 'description', /control characters/],
  [
    'a description of 1025 characters',
    album({ description: 'x'.repeat(1025) }),
    'description',
    /longer than 1024/,
  ],
  ['a tenant with a space', album({ tenant: 'a b' }), 'tenant', /--tenant "a b" contains character U\+0020/],
  ['a user with a newline', album({ user: 'bob\n' }), 'user', /contains character U\+000a/],
  ['an album of 129 characters', album({ album: 'a'.repeat(129) }), 'album', /at most 128/],
]

for (const [what, input, field, message] of refused) {
  t.test(`create refuses ${what}, naming ${field}`, async (t) => {
    const err = refusal(() => validateCreate(input, NOW))
    t.equal(err.field, field)
    t.match(err.message, message)
  })
}

t.test('album and user ids follow token/ids.ts: 1–128 characters of A–Z a–z 0–9 . _ @ + -', async (t) => {
  t.equal(checkName('A-1_b.c', '--album', 'album'), 'A-1_b.c')
  t.equal(checkName('jane.doe@example.org', '--user', 'user'), 'jane.doe@example.org')
  t.equal(checkName('a'.repeat(128), '--album', 'album').length, 128, '128 characters are fine')
  t.match(refusal(() => checkName('', '--album', 'album')).message, /--album must not be empty/)
  t.match(
    refusal(() => checkName('a'.repeat(129), '--album', 'album')).message,
    /129 characters long; at most 128/,
  )
  t.match(refusal(() => checkName('a\tb', '--user', 'user')).message, /U\+0009/)
  t.match(
    refusal(() => checkName('alice\n', '--user', 'user')).message,
    /"alice\?" contains character U\+000a/,
  )
  t.match(refusal(() => checkName('a\u0000b', '--user', 'user')).message, /"a\?b" contains character U\+0000/)
  t.match(
    refusal(() => checkName('org:alice', '--user', 'user')).message,
    /contains ':'/,
    "':' would break the user:<id> invalidation message",
  )
  t.match(refusal(() => checkName('é', '--album', 'album')).message, /contains character U\+00e9/)
  t.match(refusal(() => checkName('-x', '--album', 'album')).message, /start with a letter or digit/)
  t.equal(refusal(() => checkName(' ', '--user', 'user')).field, 'user')
})

t.test('token ids follow token/ids.ts: at most 64 characters, no @ or +', async (t) => {
  t.equal(checkTokenId(newTokenId()).length, 20)
  t.match(refusal(() => checkTokenId('tok_'.padEnd(65, 'x'))).message, /65 characters long; at most 64/)
  t.match(refusal(() => checkTokenId('tok_a\nb')).message, /U\+000a/)
  t.match(refusal(() => checkTokenId('a@b')).message, /contains character U\+0040/)
  t.equal(refusal(() => checkTokenId('a b')).field, 'id')
})

t.test('an expiry past now + tokens.maxLifetime is refused, one at the bound accepted', async (t) => {
  const max = 365 * DAY
  t.equal(validateCreate(album({ expiresIn: '365d' }), NOW, { maxLifetime: max }).expiresAt, NOW + max)
  const over = refusal(() => validateCreate(album({ expiresIn: '366d' }), NOW, { maxLifetime: max }))
  t.equal(over.field, 'expires')
  t.match(over.message, /more than 365d.*tokens\.maxLifetime/)
  const absurd = refusal(() =>
    validateCreate(album({ expiresIn: undefined, expiresAt: 9_000_000_000_000_000 }), NOW, {
      maxLifetime: max,
    }),
  )
  t.match(absurd.message, /tokens\.maxLifetime/)
})

t.test(
  'without a configured bound, an expiry past the last representable date is still refused',
  async (t) => {
    const err = refusal(() =>
      validateCreate(album({ expiresIn: undefined, expiresAt: 9_000_000_000_000_000 }), NOW),
    )
    t.equal(err.field, 'expires')
  },
)

t.test('a token id is tok_ and 16 URL-safe characters, new every time', async (t) => {
  const a = newTokenId()
  t.match(a, /^tok_[A-Za-z0-9_-]{16}$/)
  t.not(a, newTokenId())
})

t.test('a missing token is an AdminInputError of its own class', async (t) => {
  const err = new AdminNotFound('no token', 'id')
  t.ok(err instanceof AdminInputError)
  t.equal(err.name, 'AdminNotFound')
})

const record = (extra: Partial<TokenRecord> = {}): TokenRecord => ({
  id: 'tok_x',
  kind: 'album',
  user: '',
  album: 'A1',
  perms: new Set(['read', 'write']),
  expiresAt: NOW + DAY,
  createdAt: NOW - DAY,
  enabled: true,
  revokedAt: 0,
  description: 'for the viewer',
  tenant: '',
  attrs: {},
  userActive: true,
  userValidUntil: 0,
  lastUsedAt: 0,
  ...extra,
})

t.test('status follows the order of the policy check: revoked, then disabled, then expired', async (t) => {
  t.equal(statusOf(record(), NOW), 'active')
  t.equal(statusOf(record({ expiresAt: NOW }), NOW), 'expired', 'a token expires at its expiresAt')
  t.equal(statusOf(record({ enabled: false, expiresAt: NOW - 1 }), NOW), 'disabled')
  t.equal(statusOf(record({ revokedAt: NOW - 5, enabled: false, expiresAt: NOW - 1 }), NOW), 'revoked')
})

t.test('the administrator view has ISO dates and no hash or secret', async (t) => {
  const info = toInfo(record(), NOW)
  t.same(info, {
    id: 'tok_x',
    kind: 'album',
    user: '',
    album: 'A1',
    perms: ['read', 'write'],
    expiresAt: '2026-01-02T00:00:00.000Z',
    createdAt: '2025-12-31T00:00:00.000Z',
    createdBy: null,
    enabled: true,
    revokedAt: null,
    lastUsedAt: null,
    lastRefusedAt: null,
    lastRefusedReason: null,
    description: 'for the viewer',
    tenant: '',
    attrs: {},
    status: 'active',
  })
  t.equal(toInfo(record({ revokedAt: NOW }), NOW).revokedAt, '2026-01-01T00:00:00.000Z')
  t.equal(toInfo(record({ lastUsedAt: NOW }), NOW).lastUsedAt, '2026-01-01T00:00:00.000Z')
  t.match(toInfo(record({ createdBy: 'jane', lastRefusedAt: NOW, lastRefusedReason: 'revoked' }), NOW), {
    createdBy: 'jane',
    lastRefusedAt: '2026-01-01T00:00:00.000Z',
    lastRefusedReason: 'revoked',
  })
})
