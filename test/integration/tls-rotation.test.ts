// Certificate rotation without a restart (issue 17.2): a reload re-reads listen.tls.cert/key; new
// connections get the new certificate, open ones (an HTTP/2 session, a keep-alive HTTP/1.1
// connection) are not dropped, and a bad file keeps the running certificate with a logged reason.
import { copyFileSync, writeFileSync } from 'node:fs'
import { type ClientHttp2Session, connect } from 'node:http2'
import { Agent, get } from 'node:https'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { makePki } from '../helpers/certs.js'
import { admin, startGate } from '../helpers/gate.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const pki = makePki()
t.teardown(pki.remove)
const first = pki.issue('first')
const second = pki.issue('second')
const third = pki.issue('third')
// The files the config names: rotated by copying over them, as certbot or cert-manager would.
const certPath = join(pki.dir, 'live.pem')
const keyPath = join(pki.dir, 'live.key')
copyFileSync(first.cert, certPath)
copyFileSync(first.key, keyPath)

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read',
  expiresIn: '1h',
})
const listen = { host: '127.0.0.1', port: 0, tls: { cert: certPath, key: keyPath }, http2: true }
const gate = await startGate({
  redisUrl: redis.url,
  upstream: upstream.url,
  config: { listen, metrics: { port: 0 } },
})
t.teardown(gate.stop)
// The same config as a file, for reloadFromFile (what SIGHUP runs).
const configFile = join(pki.dir, 'tokengate.json')
writeFileSync(
  configFile,
  JSON.stringify({
    listen,
    redis: { url: redis.url },
    mounts: [{ path: '/api', upstream: upstream.url }],
    log: { level: 'info' },
    metrics: { port: 0 },
  }),
)
const base = `https://127.0.0.1:${gate.port}`
const auth = { authorization: `Bearer ${token}` }

/** One request on a new connection: the status and the certificate the server showed. */
function fresh(): Promise<{ status: number; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = get(`${base}/api/studies`, { ca: pki.caPem, headers: auth, agent: false }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }))
    })
    req.on('error', reject)
  })
}

function h2get(session: ClientHttp2Session): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/api/studies', ...auth })
    let status = 0
    stream.on('response', (h) => {
      status = Number(h[':status'])
    })
    stream.resume()
    stream.on('end', () => resolve(status))
    stream.on('error', reject)
  })
}

function rotateTo(cert: string, key: string): void {
  copyFileSync(cert, certPath)
  copyFileSync(key, keyPath)
}

t.test('under load, a reload serves the new certificate to new connections and drops none', async (t) => {
  const session = connect(base, { ca: pki.caPem })
  t.teardown(() => session.close())
  const keepAlive = new Agent({ keepAlive: true, ca: pki.caPem, maxSockets: 1 })
  t.teardown(() => keepAlive.destroy())
  t.equal(await h2get(session), 200)
  t.equal((await fresh()).fingerprint, first.fingerprint256)

  // A client looping on new connections while the certificate changes under it.
  const seen: { status: number; fingerprint: string }[] = []
  const failures: unknown[] = []
  let looping = true
  const loop = (async () => {
    while (looping) {
      try {
        seen.push(await fresh())
      } catch (err) {
        failures.push(err)
      }
    }
  })()
  await waitFor('five requests before the rotation', () => seen.length >= 5)
  rotateTo(second.cert, second.key)
  t.ok(await gate.app.reloadFromFile(configFile), 'the reload is accepted')
  const at = seen.length
  await waitFor('five requests after the rotation', () => seen.length >= at + 5)
  looping = false
  await loop

  t.same(failures, [], 'no request failed while the certificate changed')
  t.ok(seen.every((s) => s.status === 200))
  t.ok(seen.slice(0, 5).every((s) => s.fingerprint === first.fingerprint256))
  t.ok(
    seen.slice(at + 1).every((s) => s.fingerprint === second.fingerprint256),
    'new connections: new certificate',
  )
  t.ok(gate.logs.some((l) => l.includes('listener certificate reloaded')))
  // The session opened before the rotation is still served, on its old certificate.
  t.equal(await h2get(session), 200)
  t.equal((session.socket as TLSSocket).getPeerCertificate().fingerprint256, first.fingerprint256)
})

t.test('a bad certificate file keeps the running certificate and logs why', async (t) => {
  const before = (await fresh()).fingerprint
  writeFileSync(certPath, 'not a certificate\n')
  t.notOk(gate.app.reloadCertificate(), 'refused')
  await waitFor('the refusal logged', () =>
    gate.logs.some((l) => l.includes('listener certificate reload refused')),
  )
  const line = JSON.parse(gate.logs.findLast((l) => l.includes('reload refused')) as string)
  t.ok(typeof line.err === 'string' && line.err.length > 0, `the reason is logged: ${line.err}`)
  t.equal((await fresh()).fingerprint, before, 'still the running certificate')

  // A file that does not load at all refuses the config reload, and still keeps the certificate.
  t.notOk(await gate.app.reloadFromFile(configFile))
  t.ok(gate.logs.some((l) => l.includes('listener.tls') || l.includes('not a PEM file')))
  t.equal((await fresh()).fingerprint, before)
})

t.test('a certificate with the wrong key is refused; the right pair is then taken', async (t) => {
  const before = (await fresh()).fingerprint
  copyFileSync(third.cert, certPath)
  copyFileSync(first.key, keyPath)
  t.notOk(gate.app.reloadCertificate())
  t.equal((await fresh()).fingerprint, before)
  rotateTo(third.cert, third.key)
  t.ok(gate.app.reloadCertificate())
  t.equal((await fresh()).fingerprint, third.fingerprint256)
})
