// The api-token decision (issue 13): a grant must cover the resource type, the id the path bound
// (or `*`) and the action; `{attr.NAME}` must equal the token's attribute; resource mounts admit
// api tokens only and api tokens reach nothing else; an unreadable grants field refuses everything.
// Records come from the real Redis-hash reader (fromHash), routes from the real matcher.
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'
import type { GateError } from '../../../src/errors.js'
import { decide } from '../../../src/policy/decide.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { matchRoute } from '../../../src/route/match.js'
import { fromHash, type TokenRecord, toHash, tokenAttr } from '../../../src/token/record.js'
import { apiRecord, iotMount } from '../../helpers/resources.js'

const NOW = 1_700_000_000_000
const routes = compileRoutes(
  configSchema.parse({
    mounts: [{ path: '/api', upstream: 'http://pacs/dicom-web' }, iotMount('http://127.0.0.1:9000/v1')],
  }),
)
const noMembership = {
  isAlbumMember: async () => {
    throw new Error('an api decision must not ask the store')
  },
}
const NONE = { albums: [], inbox: false }

const apiToken = (grants: string[], over: Record<string, string> = {}) => apiRecord(grants, NOW, over)

function outcome(record: TokenRecord, method: string, url: string): string {
  try {
    const d = decide(record, matchRoute(routes, method, url), NONE, NOW, noMembership)
    if (d instanceof Promise) return 'promise'
    return `allow ${d.scope.kind}`
  } catch (err) {
    return `${(err as GateError).name} ${(err as GateError).reason}`
  }
}

const thinger = apiToken(['device:device42:AccessDeviceResources,GetDeviceStats', 'bucket:*:ReadBucket'])

t.test("Thinger's profile: device42's resources and stats, every bucket's data, nothing more", async (t) => {
  const table: [string, string, string][] = [
    ['GET', '/iot/devices/device42/resources/x', 'allow api'],
    ['GET', '/iot/devices/device42/stats', 'allow api'],
    ['GET', '/iot/buckets/b1/data', 'allow api'],
    ['GET', '/iot/buckets/anything/data', 'allow api'],
    ['GET', '/iot/devices/device99/resources/x', 'Forbidden no_grant'],
    ['GET', '/iot/devices/device99/stats', 'Forbidden no_grant'],
    ['DELETE', '/iot/devices/device42', 'Forbidden no_grant'],
    ['GET', '/iot/devices', 'Forbidden no_grant'],
    ['POST', '/iot/buckets/b1/data', 'Forbidden no_grant'],
    ['GET', '/iot/departments/cardiology/x', 'Forbidden no_grant'],
    ['GET', '/api/studies', 'Forbidden wrong_kind'],
  ]
  for (const [method, url, want] of table) t.equal(outcome(thinger, method, url), want, `${method} ${url}`)
})

t.test('a grant on * covers every id, and a path naming no id needs one', async (t) => {
  const all = apiToken(['device:*:ListDevices,DeleteDevice'])
  t.equal(outcome(all, 'GET', '/iot/devices'), 'allow api')
  t.equal(outcome(all, 'DELETE', '/iot/devices/d1'), 'allow api')
  t.equal(outcome(all, 'GET', '/iot/devices/d1/stats'), 'Forbidden no_grant', 'only the actions named')
  const one = apiToken(['device:d1:ListDevices'])
  t.equal(outcome(one, 'GET', '/iot/devices'), 'Forbidden no_grant', 'a grant on d1 does not list all')
  t.equal(outcome(apiToken(['device:d1:*']), 'DELETE', '/iot/devices/d1'), 'allow api', 'action *')
  t.equal(outcome(apiToken(['device:d1:*']), 'DELETE', '/iot/devices/d2'), 'Forbidden no_grant')
  t.equal(outcome(apiToken(['*:*:ReadBucket']), 'GET', '/iot/buckets/b/data'), 'allow api', 'type *')
})

t.test('admin reaches every rule; the attribute check still applies', async (t) => {
  const admin = apiToken(['admin'])
  for (const [method, url] of [
    ['GET', '/iot/devices'],
    ['DELETE', '/iot/devices/x'],
    ['POST', '/iot/buckets/b/data'],
  ] as const)
    t.equal(outcome(admin, method, url), 'allow api', `${method} ${url}`)
  t.equal(outcome(admin, 'GET', '/iot/departments/cardiology/x'), 'Forbidden attr_mismatch')
})

t.test("{attr.department} must equal the token's department, exactly", async (t) => {
  const cardiology = apiToken(['department:*:read'], { attrs: JSON.stringify({ department: 'cardiology' }) })
  t.equal(outcome(cardiology, 'GET', '/iot/departments/cardiology/reports'), 'allow api')
  t.equal(outcome(cardiology, 'GET', '/iot/departments/Cardiology/reports'), 'Forbidden attr_mismatch')
  t.equal(outcome(cardiology, 'GET', '/iot/departments/radiology/reports'), 'Forbidden attr_mismatch')
  t.equal(
    outcome(cardiology, 'GET', '/iot/departments/cardiolog%79/x'),
    'allow api',
    'decoded as the upstream',
  )
  for (const attrs of [
    '',
    'not json',
    '["cardiology"]',
    '{"department": 7}',
    '{"Department": "cardiology"}',
  ]) {
    const other = apiToken(['department:*:read'], { attrs })
    t.equal(outcome(other, 'GET', '/iot/departments/cardiology/x'), 'Forbidden attr_mismatch', attrs)
  }
  const proto = apiToken(['department:*:read'], { attrs: '{}' })
  t.equal(tokenAttr(proto, 'constructor'), undefined, 'inherited properties are no attributes')
  t.equal(tokenAttr(proto, '__proto__'), undefined)
})

t.test('album and user tokens are refused on a resource mount whatever their permissions', async (t) => {
  const album = fromHash({ ...toHash(thinger), kind: 'album', album: 'device42', perms: 'read,write' })
  const user = fromHash({ ...toHash(thinger), kind: 'user', user: 'alice' })
  for (const r of [album, user]) {
    if (!r) throw new Error('not a record')
    t.equal(outcome(r, 'GET', '/iot/devices/device42/stats'), 'Forbidden wrong_kind', r.kind)
    t.equal(outcome(r, 'GET', '/iot/devices'), 'Forbidden wrong_kind', r.kind)
  }
})

t.test('validity is checked first, and a malformed grants field refuses everything', async (t) => {
  t.equal(outcome(apiToken(['admin'], { enabled: '0' }), 'GET', '/iot/devices'), 'InvalidToken disabled')
  t.equal(outcome(apiToken(['admin'], { revokedAt: '5' }), 'GET', '/iot/devices'), 'InvalidToken revoked')
  t.equal(
    outcome(apiToken(['admin'], { expiresAt: String(NOW) }), 'GET', '/iot/devices'),
    'InvalidToken expired',
  )
  for (const grants of ['not json', '{"a":1}', '["device:d1"]', '["admin", 7, "x y z"]']) {
    const broken = apiToken([], { grants })
    t.equal(broken.grants, null, `${grants}: read as unreadable`)
    t.equal(outcome(broken, 'GET', '/iot/devices'), 'Forbidden bad_grants', grants)
  }
  t.same(apiToken([], { grants: '' }).grants, [], 'no field: no grants')
  t.equal(outcome(apiToken([], { grants: '' }), 'GET', '/iot/devices'), 'Forbidden no_grant')
})

t.test('grants survive the Redis hash round trip; other kinds store none', async (t) => {
  t.same(fromHash(toHash(thinger))?.grants, thinger.grants)
  t.equal(
    toHash(thinger).grants,
    '["device:device42:AccessDeviceResources,GetDeviceStats","bucket:*:ReadBucket"]',
  )
  const album = fromHash({ ...toHash(thinger), kind: 'album', album: 'A' })
  t.equal(album?.grants, undefined, 'an album record has no grants')
  t.notOk(album && 'grants' in toHash(album))
})
