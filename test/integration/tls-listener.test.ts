// TLS and HTTP/2 on the public listener (issue 17.1): one pipeline over HTTPS/1.1 and HTTP/2 (ALPN
// on one port): the same answers, errors, streaming both ways, access-log lines, HSTS; curl and
// Node's http2 client, certificates made at test time.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { type ClientHttp2Session, connect } from 'node:http2'
import { promisify } from 'node:util'
import t from 'tap'
import { makePki } from '../helpers/certs.js'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const run = promisify(execFile)
const pki = makePki()
t.teardown(pki.remove)
const server = pki.issue('gate')
const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read,write',
  expiresIn: '1h',
})
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  config: {
    listen: {
      host: '127.0.0.1',
      port: 0,
      tls: { cert: server.cert, key: server.key },
      http2: true,
      hsts: '180d',
    },
    metrics: { port: 0 },
  },
})
t.teardown(gate.stop)
const base = `https://127.0.0.1:${gate.port}`

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

function h2session(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(base, { ca: pki.caPem }, () => resolve(session))
    session.once('error', reject)
  })
}

/** One HTTP/2 request on `session` (no Host header: :authority names the host). */
function h2(
  session: ClientHttp2Session,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ...headers })
    const parts: Buffer[] = []
    let head: Answer['headers'] = {}
    stream.on('response', (h) => {
      head = h
    })
    stream.on('data', (c: Buffer) => parts.push(c))
    stream.on('end', () =>
      resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(parts) }),
    )
    stream.on('error', reject)
    stream.end(body)
  })
}

async function curl(
  args: string[],
): Promise<{ status: number; version: string; body: string; headers: string }> {
  const { stdout } = await run('curl', [
    '-sS',
    '--cacert',
    pki.ca,
    '-D',
    '-',
    '-w',
    '\n%{http_code} %{http_version}',
    ...args,
  ])
  const lines = stdout.split('\n')
  const [status, version] = (lines.pop() ?? '').split(' ')
  const text = lines.join('\n')
  const split = text.indexOf('\r\n\r\n')
  return {
    status: Number(status),
    version: version ?? '',
    headers: text.slice(0, split),
    body: text.slice(split + 4),
  }
}

t.test('curl over HTTPS/1.1 and HTTP/2 gets the same authorised answer, with HSTS', async (t) => {
  const auth = ['-H', `Authorization: Bearer ${token}`]
  const one = await curl(['--http1.1', ...auth, `${base}/api/studies?x=1`])
  const two = await curl(['--http2', ...auth, `${base}/api/studies?x=1`])
  t.equal(one.version, '1.1')
  t.equal(two.version, '2')
  t.equal(one.status, 200)
  t.equal(two.status, 200)
  t.same(JSON.parse(two.body), JSON.parse(one.body), 'the upstream saw the same request')
  t.match(one.headers, /strict-transport-security: max-age=15552000/i)
  t.match(two.headers, /strict-transport-security: max-age=15552000/i)
  t.notMatch(two.headers, /^connection:/im, 'no connection header on HTTP/2')
})

t.test('an HTTP/2 request without Host is authorised, forwarded without pseudo-headers', async (t) => {
  const session = await h2session()
  t.teardown(() => session.close())
  const before = upstream.requests.length
  const answer = await h2(session, 'GET', '/api/studies?PatientID=1', { authorization: `Bearer ${token}` })
  t.equal(answer.status, 200, answer.body.toString())
  const seen = upstream.requests[before]
  t.ok(seen, 'the upstream got the request')
  t.equal(seen?.url, '/dicom-web/studies?PatientID=1&album=A')
  t.same(
    Object.keys(seen?.headers ?? {}).filter((h) => h.startsWith(':')),
    [],
    'no pseudo-header reached the upstream',
  )
})

t.test('error answers are the same JSON over HTTP/2, a refused upload included', async (t) => {
  const session = await h2session()
  t.teardown(() => session.close())
  const missing = await h2(session, 'GET', '/api/studies')
  const one = await curl(['--http1.1', `${base}/api/studies`])
  t.equal(missing.status, one.status)
  t.same(JSON.parse(missing.body.toString()), JSON.parse(one.body))
  // A refused upload we never read: HTTP/1.1 closes the connection; HTTP/2 just ends the stream.
  const refused = await h2(
    session,
    'POST',
    '/api/studies',
    { authorization: 'Bearer tg_nope', 'content-type': 'application/dicom' },
    Buffer.alloc(4096),
  )
  t.equal(refused.status, 401)
  t.equal(refused.headers.connection, undefined)
  const after = await h2(session, 'GET', '/api/studies', { authorization: `Bearer ${token}` })
  t.equal(after.status, 200, 'the session still serves')
})

t.test('uploads and downloads stream intact over HTTP/2', async (t) => {
  const session = await h2session()
  t.teardown(() => session.close())
  const body = Buffer.alloc(3 * 1024 * 1024, 9)
  const before = upstream.requests.length
  const up = await h2(
    session,
    'POST',
    '/api/studies',
    { authorization: `Bearer ${token}`, 'content-type': 'application/dicom' },
    body,
  )
  t.equal(up.status, 200, up.body.toString())
  t.equal(upstream.requests[before]?.bodySha256, createHash('sha256').update(body).digest('hex'))
  const down = await h2(session, 'GET', '/api/studies/stream/5000000', { authorization: `Bearer ${token}` })
  t.equal(down.status, 200)
  t.equal(down.body.length, 5_000_000)
})

t.test('access-log lines and metrics read the same for both protocols', async (t) => {
  const session = await h2session()
  t.teardown(() => session.close())
  const from = accessLog(gate).length
  await h2(session, 'GET', '/api/studies?same=1', { authorization: `Bearer ${token}` })
  await curl(['--http1.1', '-H', `Authorization: Bearer ${token}`, `${base}/api/studies?same=1`])
  const [two, one] = accessLog(gate).slice(from)
  t.ok(two && one)
  const strip = (l: Record<string, unknown>) => {
    const { time, requestId, totalMs, authMs, upstreamMs, bytesIn, bytesOut, pid, hostname, ...rest } = l
    return rest
  }
  t.same(strip(two as Record<string, unknown>), strip(one as Record<string, unknown>))
  const metrics = await gate.app.metrics.registry.metrics()
  t.match(metrics, /tokengate_requests_total\{[^}]*\} [2-9]/)
})

t.test('stop lets an HTTP/2 download in flight finish (GOAWAY), then closes', async (t) => {
  const session = await h2session()
  const stream = session.request({
    ':path': '/api/studies/slow-stream/200000/600',
    authorization: `Bearer ${token}`,
  })
  let bytes = 0
  stream.on('data', (c: Buffer) => {
    bytes += c.length
  })
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve)
    stream.on('error', reject)
  })
  await new Promise((resolve) => stream.once('response', resolve))
  const goaway = new Promise((resolve) => session.once('goaway', resolve))
  const stopped = gate.app.stop(5000)
  await goaway
  await ended
  t.equal(bytes, 200_000, 'the download completed')
  await stopped
  await t.rejects(h2session(), 'no new connection once stopped')
})
