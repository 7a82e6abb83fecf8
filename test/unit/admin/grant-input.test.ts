// Grant input and arithmetic (issue 13): `--grant` lists read one way for create and update; adding
// merges actions into the grant on the same type and id; removing takes actions out, or the whole
// grant for `*`; and create's checks for api tokens.
import t from 'tap'
import {
  formatGrants,
  MAX_GRANTS,
  mergeGrants,
  parseGrantInput,
  subtractGrants,
} from '../../../src/admin/grant-input.js'
import { AdminInputError } from '../../../src/admin/input-error.js'
import { toInfo, validateCreate } from '../../../src/admin/tokens.js'
import { apiRecord } from '../../helpers/resources.js'

const NOW = 1_700_000_000_000
const g = (...list: string[]) => parseGrantInput(list, 'grant')
const text = (grants: Parameters<typeof formatGrants>[0]) => formatGrants(grants)

t.test('adding merges actions into the grant on the same type and id, in first-seen order', async (t) => {
  t.same(
    text(
      mergeGrants(
        g('device:d42:GetDeviceStats', 'bucket:*:ReadBucket'),
        g('device:d42:AccessDeviceResources'),
      ),
    ),
    ['device:d42:AccessDeviceResources,GetDeviceStats', 'bucket:*:ReadBucket'],
  )
  t.same(text(mergeGrants(g('device:d42:A'), g('device:d42:*'))), ['device:d42:*'], '* absorbs the rest')
  t.same(text(mergeGrants([], g('device:d1:A', 'device:d1:A,B'))), ['device:d1:A,B'], 'duplicates merge')
  t.same(text(mergeGrants(g('device:d1:A'), g('admin'))), ['device:d1:A', 'admin'])
})

t.test('removing takes the actions named out, or the whole grant for *', async (t) => {
  const start = g('device:d42:AccessDeviceResources,GetDeviceStats', 'bucket:*:ReadBucket', 'admin')
  t.same(text(subtractGrants(start, g('device:d42:GetDeviceStats'))), [
    'device:d42:AccessDeviceResources',
    'bucket:*:ReadBucket',
    'admin',
  ])
  t.same(text(subtractGrants(start, g('device:d42:*', 'admin'))), ['bucket:*:ReadBucket'])
  t.same(
    text(subtractGrants(start, g('device:d42:AccessDeviceResources,GetDeviceStats'))),
    ['bucket:*:ReadBucket', 'admin'],
    'a grant left with no action goes',
  )
  t.same(text(subtractGrants(start, g('device:d7:GetDeviceStats'))), text(start), 'absent: no change')
  t.same(text(subtractGrants(start, g('bucket:b1:ReadBucket'))), text(start), 'b1 is not the * grant')
  t.throws(
    () => subtractGrants(g('device:d1:*'), g('device:d1:A')),
    { name: 'AdminInputError', message: /allows every action: remove it whole \(device:d1:\*\)/ },
    'one action cannot leave a grant on every action',
  )
})

t.test('bad grants are input errors naming the field and what to change', async (t) => {
  for (const bad of ['device', 'device:d1', 'device:d1:', 'dev ice:d1:A', 'device:d/1:A', 'a:b:c:d']) {
    t.throws(() => parseGrantInput([bad], 'grants'), AdminInputError, bad)
  }
  t.throws(() => parseGrantInput(Array(MAX_GRANTS + 1).fill('admin'), 'grants'), /at most 256 grants/)
  t.same(text(parseGrantInput('bucket:*:ReadBucket', 'grants')), ['bucket:*:ReadBucket'], 'one string')
})

t.test('create: api tokens need grants and take no album or perms; others take no grants', async (t) => {
  const valid = validateCreate(
    { kind: 'api', grants: ['bucket:*:ReadBucket', 'bucket:*:WriteBucket'], expiresIn: '1h' },
    NOW,
  )
  t.equal(valid.kind, 'api')
  t.same(text(valid.grants ?? []), ['bucket:*:ReadBucket,WriteBucket'], 'stored merged')
  t.equal(valid.perms.size, 0)
  const refused: [string, Parameters<typeof validateCreate>[0], string, RegExp][] = [
    ['no grant', { kind: 'api', expiresIn: '1h' }, 'grants', /at least one grant/],
    ['an album', { kind: 'api', album: 'A', grants: 'admin', expiresIn: '1h' }, 'album', /drop --album/],
    ['perms', { kind: 'api', perms: 'read', grants: 'admin', expiresIn: '1h' }, 'perms', /use --grant/],
    ['a bad grant', { kind: 'api', grants: ['device:d1'], expiresIn: '1h' }, 'grants', /TYPE:ID:ACTION/],
    [
      'grants on an album token',
      { kind: 'album', album: 'A', perms: 'read', grants: 'admin', expiresIn: '1h' },
      'grants',
      /only api tokens/,
    ],
    ['no expiry', { kind: 'api', grants: 'admin' }, 'expires', /mandatory/],
  ]
  for (const [what, input, field, message] of refused) {
    const err = t.throws(
      () => validateCreate(input, NOW),
      AdminInputError,
      what,
    ) as unknown as AdminInputError
    t.equal(err.field, field, `${what}: field`)
    t.match(err.message, message, `${what}: message`)
  }
})

t.test('the administrator view shows grants of api tokens only, null when unreadable', async (t) => {
  const base = apiRecord(['device:d1:A'], NOW)
  t.same(toInfo(base, NOW).grants, ['device:d1:A'])
  t.equal(toInfo({ ...base, grants: null }, NOW).grants, null)
  t.notOk('grants' in toInfo({ ...base, kind: 'album', album: 'A', grants: undefined }, NOW))
})
