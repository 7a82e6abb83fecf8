// The TLS config keys (issue 17): what is refused before any file is read.
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'

const base = { mounts: [{ path: '/api', upstream: 'https://pacs.internal/dicom-web' }] }
const problems = (input: Record<string, unknown>) => {
  const r = configSchema.safeParse({ ...base, ...input })
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
}

t.test('listen.http2 without listen.tls is refused', async (t) => {
  t.match(problems({ listen: { http2: true } }), [/^listen\.http2: http2 needs listen\.tls/])
})

t.test('a client certificate without its key is refused, for mounts and redis', async (t) => {
  const mount = { ...base.mounts[0], tls: { cert: '/c.pem' } }
  t.match(problems({ mounts: [mount] }), [/^mounts\.0\.tls\.key: give cert and key together/])
  t.match(problems({ redis: { tls: { key: '/k.pem' } } }), [/^redis\.tls\.cert: give cert and key together/])
})

t.test('mount tls on an http:// upstream is refused', async (t) => {
  const mount = { path: '/api', upstream: 'http://pacs.internal/', tls: { ca: '/ca.pem' } }
  t.match(problems({ mounts: [mount] }), [/^mounts\.0\.tls: tls needs an https:\/\/ upstream/])
})

t.test('hsts is a duration, minVersion TLSv1.2 by default', async (t) => {
  const c = configSchema.parse({ ...base, listen: { tls: { cert: '/c', key: '/k' }, hsts: '180d' } })
  t.equal(c.listen.hsts, 180 * 86_400_000)
  t.equal(c.listen.tls?.minVersion, 'TLSv1.2')
})

t.test('systemCa: true by default, and false needs a ca (mounts and redis)', async (t) => {
  const c = configSchema.parse({ ...base, mounts: [{ ...base.mounts[0], tls: { ca: '/ca.pem' } }] })
  t.equal(c.mounts[0]?.tls?.systemCa, true)
  const mount = { ...base.mounts[0], tls: { systemCa: false } }
  t.match(problems({ mounts: [mount] }), [/^mounts\.0\.tls\.systemCa: systemCa: false needs a ca/])
  t.match(problems({ redis: { tls: { systemCa: false } } }), [
    /^redis\.tls\.systemCa: systemCa: false needs a ca/,
  ])
  t.same(problems({ redis: { tls: { ca: '/ca.pem', systemCa: false } } }), [])
})
