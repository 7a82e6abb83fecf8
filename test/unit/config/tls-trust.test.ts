// Which CAs a TLS client section trusts (mounts[].tls, redis.tls): its `ca` beside the system's
// roots by default, alone with `systemCa: false`; built once into a SecureContext.
import { rootCertificates } from 'node:tls'
import t from 'tap'
import { clientTls, trustedCas } from '../../../src/config/tls-files.js'
import { makePki } from '../../helpers/certs.js'

const pki = makePki()
t.teardown(pki.remove)

t.test('by default the private CA is trusted in addition to every system root', async (t) => {
  const cas = trustedCas(pki.caPem, true)
  t.equal(cas.length, rootCertificates.length + 1)
  for (const root of rootCertificates) t.ok(cas.includes(root), 'a system root is kept')
  t.ok(cas.includes(pki.caPem), 'the private CA is added')
})

t.test('with systemCa: false the private CA is the only one trusted', async (t) => {
  t.same(trustedCas(pki.caPem, false), [pki.caPem])
})

t.test('clientTls: one digest per settings and file contents; a bad pair names its section', async (t) => {
  const client = pki.issue('client', { client: true })
  const section = { ca: pki.ca, systemCa: true, cert: client.cert, key: client.key }
  const a = clientTls('mounts[0].tls', section)
  t.equal(clientTls('mounts[0].tls', section).digest, a.digest, 'same files, same digest')
  t.not(clientTls('mounts[0].tls', { ...section, systemCa: false }).digest, a.digest)
  const other = pki.issue('other', { client: true })
  t.throws(() => clientTls('redis.tls', { ...section, key: other.key }), {
    name: 'ConfigError',
    message: /^redis\.tls: .*key values mismatch/,
  })
  t.throws(() => clientTls('redis.tls', { ...section, ca: `${pki.dir}/nope.pem` }), {
    message: /^redis\.tls\.ca: .*nope\.pem: no such file/,
  })
})
