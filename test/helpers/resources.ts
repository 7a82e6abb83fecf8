// Thinger.io's example of issue 13, shared by the tests of resource rules: the /iot mount's
// device / bucket / department rules in the issue's own words, and api-token records as Redis
// holds them (read back through the real record reader).
import { parseGrant, serializeGrants } from '../../src/policy/grants.js'
import { fromHash, type TokenRecord } from '../../src/token/record.js'

/** The issue's `resources`, verbatim. */
export const THINGER_RESOURCES = {
  device: [
    { methods: ['GET'], path: '/devices/{id}/resources/**', action: 'AccessDeviceResources' },
    { methods: ['GET'], path: '/devices/{id}/stats', action: 'GetDeviceStats' },
    { methods: ['GET'], path: '/devices', action: 'ListDevices' },
    { methods: ['DELETE'], path: '/devices/{id}', action: 'DeleteDevice' },
  ],
  bucket: [
    { methods: ['GET'], path: '/buckets/{id}/data', action: 'ReadBucket' },
    { methods: ['POST'], path: '/buckets/{id}/data', action: 'WriteBucket' },
  ],
  department: [{ methods: ['GET'], path: '/departments/{attr.department}/**', action: 'read' }],
}

/** The issue's /iot mount in front of `upstream` (e.g. `http://127.0.0.1:9000/v1`). */
export function iotMount(upstream: string) {
  return { path: '/iot', upstream, resources: THINGER_RESOURCES }
}

/** An api token's record with these grants, built from its Redis hash form; `over` sets fields. */
export function apiRecord(grants: string[], now: number, over: Record<string, string> = {}): TokenRecord {
  const record = fromHash({
    id: 'tok_api1',
    kind: 'api',
    user: '',
    album: '',
    perms: '',
    expiresAt: String(now + 60_000),
    createdAt: String(now - 60_000),
    enabled: '1',
    revokedAt: '0',
    grants: serializeGrants(grants.map(parseGrant)),
    ...over,
  })
  if (!record) throw new Error('not a record')
  return record
}
