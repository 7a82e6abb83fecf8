// Admin input with no Redis: attributes (admin/attrs-input.ts), user fields (admin/user-input.ts)
// and the shared schema parser with token update checks (admin/token-input.ts): what is accepted,
// what is refused, and which field the refusal names.
import t from 'tap'
import { attrsFromPairs, checkAttrs, mergeAttrs } from '../../../src/admin/attrs-input.js'
import {
  createTokenSchema,
  parseInput,
  updateTokenSchema,
  validateCreate,
} from '../../../src/admin/token-input.js'
import { resolveValidUntil, userSchema, validateUser } from '../../../src/admin/user-input.js'
import { formatAttrs, parseAttrs } from '../../../src/token/record.js'
import { refusal } from '../../helpers/admin-input.js'

const NOW = Date.UTC(2026, 0, 1)

t.test('--attr pairs become a map; a later key wins; a value may hold "="', async (t) => {
  t.same(attrsFromPairs(['department=radiology', 'q=a=b', 'department=lab']), { department: 'lab', q: 'a=b' })
  t.match(refusal(() => attrsFromPairs(['department'])).message, /must be key=value/)
  t.match(refusal(() => attrsFromPairs(['=x'])).message, /must be key=value/)
})

t.test('attribute names and values are header-safe, and bounded', async (t) => {
  t.same(checkAttrs({ department: 'Radiology A', 'user-type': '' }), {
    department: 'Radiology A',
    'user-type': '',
  })
  const bads: Record<string, string>[] = [
    { '1dep': 'x' },
    { 'dep.x': 'x' },
    { dep: 'a\r\nX-Evil: 1' },
    { dep: 'é' },
    { dep: 'x'.repeat(257) },
  ]
  for (const bad of bads) {
    t.equal(refusal(() => checkAttrs(bad)).field, 'attrs', JSON.stringify(bad))
  }
  const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`a${i}`, 'v']))
  t.match(refusal(() => checkAttrs(many)).message, /at most 32/)
})

t.test("a token's attributes go over its user's; an empty value drops one", async (t) => {
  t.same(mergeAttrs({ department: 'radiology', type: 'mobile' }, { department: 'oncology', type: '' }), {
    department: 'oncology',
  })
})

t.test('attributes are stored as sorted JSON and read back; anything else reads as none', async (t) => {
  t.equal(formatAttrs({ b: '2', a: '1' }), '{"a":"1","b":"2"}')
  t.equal(formatAttrs({}), '')
  t.same(parseAttrs('{"a":"1","n":5}'), { a: '1' }, 'non-string values are dropped')
  t.same(parseAttrs('[1]'), {})
  t.same(parseAttrs('not json'), {})
})

t.test('user fields: name, email, attributes, validity', async (t) => {
  t.same(
    validateUser({
      name: 'Jane',
      email: 'jane@example.org',
      attrs: { type: 'mobile' },
      validUntil: '2027-01-31',
    }),
    {
      name: 'Jane',
      email: 'jane@example.org',
      attrs: { type: 'mobile' },
      validUntil: Date.UTC(2027, 0, 31),
    },
  )
  t.equal(resolveValidUntil('none'), 0)
  t.equal(resolveValidUntil(null), 0)
  t.equal(refusal(() => validateUser({ email: 'jane' })).field, 'email')
  t.equal(refusal(() => validateUser({ name: 'a\nb' })).field, 'name')
  t.equal(refusal(() => validateUser({ validUntil: 9e15 })).field, 'validUntil')
  t.equal(refusal(() => validateUser({ validUntil: 'tomorrow' })).field, 'validUntil')
})

t.test('the shared schema refuses wrong types and unknown fields, naming the field', async (t) => {
  t.equal(refusal(() => parseInput(createTokenSchema, { kind: 'user', user: 5 })).field, 'user')
  t.equal(refusal(() => parseInput(createTokenSchema, { kind: 'user', expires: '1d' })).field, 'expires')
  t.equal(refusal(() => parseInput(userSchema, { attrs: { a: 1 } })).field, 'attrs')
  t.same(parseInput(createTokenSchema, { kind: 'user', user: 'u', perms: ['read'] }), {
    kind: 'user',
    user: 'u',
    perms: ['read'],
  })
})

t.test('create carries attributes; grants stay for api tokens', async (t) => {
  const v = validateCreate({ kind: 'user', user: 'u', expiresIn: '1d', attrs: { department: 'x' } }, NOW)
  t.same(v.attrs, { department: 'x' })
  const api = validateCreate(
    { kind: 'api', expiresIn: '1d', grants: ['admin'], attrs: { department: 'y' } },
    NOW,
  )
  t.same(api.attrs, { department: 'y' })
  t.equal(
    refusal(() => validateCreate({ kind: 'user', user: 'u', expiresIn: '1d', grants: ['admin'] }, NOW)).field,
    'grants',
  )
})

t.test('the update schema is GrantChange: add, remove, enabled, description', async (t) => {
  t.same(parseInput(updateTokenSchema, { add: 'bucket:*:ReadBucket', enabled: false }), {
    add: 'bucket:*:ReadBucket',
    enabled: false,
  })
  t.equal(refusal(() => parseInput(updateTokenSchema, { enabled: 'yes' })).field, 'enabled')
  t.equal(refusal(() => parseInput(updateTokenSchema, { grants: ['x'] })).field, 'grants')
})
