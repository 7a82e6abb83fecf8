// The checks every TLS Redis topology passes (single node, Sentinel, Cluster): with the client
// certificate, a token is looked up and its revocation heard over TLS; without it, Redis refuses
// the connection and requests fail closed (503, nothing forwarded).
// Usage: redisTlsChecks(t, { redis: { url }, ca, client, tokens: admin(setup), upstream })
import type { Test } from 'tap'
import type { TokenAdmin } from '../../src/admin/tokens.js'
import type { Issued } from './certs.js'
import { startGate } from './gate.js'
import type { RecordingUpstream } from './upstream.js'
import { waitFor } from './wait.js'

export interface RedisTlsSetup {
  /** The `redis` section without `tls` (url, sentinel or cluster). */
  redis: Record<string, unknown>
  /** The private CA's path. */
  ca: string
  /** tokengate's client certificate. */
  client: Issued
  tokens: TokenAdmin
  upstream: RecordingUpstream
}

export function redisTlsChecks(t: Test, s: RedisTlsSetup): void {
  const create = () => s.tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })

  t.test('tokens are looked up and revocations heard over TLS with a client certificate', async (t) => {
    const tls = { ca: s.ca, cert: s.client.cert, key: s.client.key }
    const gate = await startGate({ redis: { ...s.redis, tls }, upstream: s.upstream.url })
    t.teardown(gate.stop)
    const { token, id } = await create()
    const get = () => fetch(`${gate.url}/api/studies`, { headers: { authorization: `Bearer ${token}` } })
    t.equal((await get()).status, 200)
    await s.tokens.revoke(id)
    await waitFor('the revocation to reach tokengate over TLS', async () => (await get()).status === 401)
    t.pass('revoked')
  })

  t.test(
    'without the client certificate Redis refuses the connection and requests fail closed',
    async (t) => {
      const gate = await startGate({
        redis: { ...s.redis, tls: { ca: s.ca }, connectTimeout: 300 },
        upstream: s.upstream.url,
      })
      t.teardown(gate.stop)
      const { token } = await create()
      const before = s.upstream.requests.length
      const res = await fetch(`${gate.url}/api/studies`, { headers: { authorization: `Bearer ${token}` } })
      t.equal(res.status, 503)
      t.equal(s.upstream.requests.length, before, 'nothing forwarded')
    },
  )
}
