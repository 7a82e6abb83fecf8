// TLS to the upstream (issue 17.3): a private CA, a client certificate the upstream requires
// (mutual TLS) and an SNI name, per mount; a failed verification is a 502 `tls` with the reason
// logged, never a fallback to no verification; check-config names a missing TLS file.
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:http2'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { promisify } from 'node:util'
import t from 'tap'
import { makePki } from '../helpers/certs.js'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { runTokengate } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'

const run = promisify(execFile)
const pki = makePki()
t.teardown(pki.remove)
// The upstream's certificate names pacs.internal only: reached at 127.0.0.1, SNI must say so.
const pacs = pki.issue('pacs', { san: ['DNS:pacs.internal'] })
const client = pki.issue('gate-client', { client: true })
const listener = pki.issue('gate')

// A TLS upstream that requires a client certificate from the same CA, and says whose it got.
const upstream = createServer(
  { cert: pacs.certPem, key: pacs.keyPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: true },
  (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    const body = JSON.stringify({
      url: req.url,
      client: peer.subject?.CN,
      sni: (req.socket as TLSSocket & { servername?: string }).servername,
    })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  },
)
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
t.teardown(() => {
  upstream.closeAllConnections()
  upstream.close()
})
const upstreamUrl = `https://127.0.0.1:${(upstream.address() as AddressInfo).port}/dicom-web`

const redis = await startRedis()
t.teardown(redis.stop)
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read',
  expiresIn: '1h',
})
const auth = { authorization: `Bearer ${token}` }
const mutual = { ca: pki.ca, cert: client.cert, key: client.key, servername: 'pacs.internal' }

async function gateWith(tls: Record<string, string> | undefined, listen?: Record<string, unknown>) {
  const gate = await startGate({
    redisUrl: redis.url,
    upstream: upstreamUrl,
    mount: tls ? { tls } : {},
    config: { metrics: { port: 0 }, ...(listen ? { listen } : {}) },
  })
  t.teardown(gate.stop)
  return gate
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers: auth })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

t.test(
  'with the CA, a client certificate and the SNI name, the upstream answers through tokengate',
  async (t) => {
    const gate = await gateWith(mutual)
    const answer = await get(`${gate.url}/api/studies`)
    t.equal(answer.status, 200)
    t.equal(answer.body.client, 'gate-client', 'the upstream saw our client certificate')
    t.equal(answer.body.sni, 'pacs.internal')
  },
)

t.test('curl and an HTTP/2 client over a TLS listener reach the mutual-TLS upstream', async (t) => {
  const gate = await gateWith(mutual, {
    host: '127.0.0.1',
    port: 0,
    tls: { cert: listener.cert, key: listener.key },
    http2: true,
  })
  const base = `https://127.0.0.1:${gate.port}`
  const { stdout } = await run('curl', [
    '-sS',
    '--http2',
    '--cacert',
    pki.ca,
    '-H',
    `Authorization: Bearer ${token}`,
    `${base}/api/studies`,
  ])
  t.equal(JSON.parse(stdout).client, 'gate-client')
  const session = connect(base, { ca: pki.caPem })
  t.teardown(() => session.close())
  const body = await new Promise<string>((resolve, reject) => {
    const stream = session.request({ ':path': '/api/studies', ...auth })
    let text = ''
    stream.setEncoding('utf8')
    stream.on('data', (c: string) => {
      text += c
    })
    stream.on('end', () => resolve(text))
    stream.on('error', reject)
  })
  t.equal(JSON.parse(body).client, 'gate-client')
})

const refusals: [string, Record<string, string> | undefined, RegExp][] = [
  ['without the private CA (the system CAs do not know it)', undefined, /CERT|SELF_SIGNED|UNABLE_TO/],
  [
    'without the SNI name (the certificate names pacs.internal)',
    { ca: pki.ca, cert: client.cert, key: client.key },
    /ERR_TLS_CERT_ALTNAME_INVALID/,
  ],
]
for (const [what, tls, reason] of refusals) {
  t.test(`${what}: 502 tls, the reason logged, nothing forwarded unverified`, async (t) => {
    const gate = await gateWith(tls)
    const answer = await get(`${gate.url}/api/studies`)
    t.equal(answer.status, 502)
    t.equal(answer.body.reason, 'the upstream is unavailable')
    t.equal(accessLog(gate).at(-1)?.reason, 'tls')
    const logged = gate.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'upstream TLS handshake failed')
    t.match(logged?.err, reason, `logged: ${logged?.err}`)
  })
}

// TLS 1.3 sends the upstream's refusal of a missing client certificate after the handshake, and
// undici reports the closed socket, not the alert: a 502 all the same, logged as `econnreset`.
t.test('without a client certificate (the upstream requires one): 502, nothing served', async (t) => {
  const gate = await gateWith({ ca: pki.ca, servername: 'pacs.internal' })
  const answer = await get(`${gate.url}/api/studies`)
  t.equal(answer.status, 502)
  t.match(accessLog(gate).at(-1)?.reason, /^(tls|econnreset)$/)
})

t.test('check-config names the TLS file that is missing', async (t) => {
  const file = join(pki.dir, 'missing-ca.yaml')
  writeFileSync(
    file,
    `redis: { url: "${redis.url}" }\nmounts:\n  - path: /api\n    upstream: ${upstreamUrl}\n    tls: { ca: ${join(pki.dir, 'nope.pem')} }\n`,
  )
  const res = await runTokengate(['check-config', '--config', file])
  t.equal(res.code, 2)
  t.match(res.stderr, /mounts\[0\]\.tls\.ca: .*nope\.pem: no such file/)
  writeFileSync(join(pki.dir, 'empty.pem'), 'hello\n')
  writeFileSync(
    file,
    `redis: { url: "${redis.url}" }\nlisten: { tls: { cert: ${join(pki.dir, 'empty.pem')}, key: ${listener.key} } }\nmounts:\n  - path: /api\n    upstream: ${upstreamUrl}\n`,
  )
  const bad = await runTokengate(['check-config', '--config', file])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /listen\.tls\.cert: .*empty\.pem: not a PEM file/)
})
