// Nothing lost, nobody stuck: a 200 MB STOW arrives byte-identical; an upload that stalls or is
// cut never reaches the upstream as complete; slowloris headers and stalled bodies are cut by the
// listener's timeouts while other clients are served; an upstream that stops sending mid-body is
// cut after forward.idleTimeout; afterwards the agent holds no socket in use.
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { type RecordedRequest, startRecordingUpstream } from '../helpers/upstream.js'
import { probeUntil, waitFor } from '../helpers/wait.js'

const MB = 1024 * 1024
const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const gate = await startGate({
  redisUrl: redis.url,
  upstream: upstream.url,
  mount: { rules: [{ methods: '*', path: '/**', action: 'write' }] },
  config: {
    listen: { host: '127.0.0.1', port: 0, headersTimeout: '400ms', idleTimeout: '1500ms' },
    forward: { idleTimeout: '500ms' },
  },
})
t.teardown(gate.stop)
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read,write',
  expiresIn: '1h',
})
const auth = `Bearer ${token}`

/** Deterministic bytes, generated as they are read. */
function generated(size: number, pauseAfter = Number.POSITIVE_INFINITY): Readable {
  let sent = 0
  let seed = 3
  return new Readable({
    read() {
      if (sent >= pauseAfter) return // stall: never push again
      if (sent >= size) return void this.push(null)
      const n = Math.min(size - sent, 256 * 1024)
      const chunk = Buffer.allocUnsafe(n)
      for (let i = 0; i < n; i += 4) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        chunk.writeUInt32LE(seed, Math.min(i, n - 4))
      }
      sent += n
      this.push(chunk)
    },
  })
}

async function sha256(stream: Readable): Promise<string> {
  const h = createHash('sha256')
  for await (const c of stream) h.update(c as Buffer)
  return h.digest('hex')
}

function settled(seen: () => RecordedRequest | undefined): Promise<RecordedRequest | undefined> {
  return probeUntil(seen, (r) => Boolean(r && (r.bodyComplete || r.aborted)), { intervalMs: 10 })
}

t.test('a 200 MB STOW arrives at the upstream byte-identical', async (t) => {
  const size = 200 * MB
  const want = await sha256(generated(size))
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${gate.url}/api/studies`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'multipart/related; type="application/dicom"' },
    })
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    pipeline(generated(size), req).catch(reject)
  })
  t.equal(status, 200)
  const seen = upstream.requests.at(-1)
  t.equal(seen?.bodyBytes, size)
  t.equal(seen?.bodySha256, want, 'the same bytes, in order')
  t.equal(seen?.bodyComplete, true)
})

t.test('an upload cut by its client never reaches the upstream as complete', async (t) => {
  const before = upstream.requests.length
  await new Promise<void>((resolve) => {
    const req = request(`${gate.url}/api/studies`, {
      method: 'POST',
      headers: { authorization: auth, 'content-length': String(20 * MB) },
    })
    req.on('error', () => resolve())
    req.write(Buffer.alloc(2 * MB, 1), () => setTimeout(() => req.destroy(), 100))
  })
  const seen = await settled(() => upstream.requests[before])
  t.ok(seen, 'the upstream got the start')
  t.equal(seen?.bodyComplete, false, 'never complete')
  t.ok((seen?.bodyBytes ?? 0) < 20 * MB)
})

t.test('a stalled upload is cut by listen.idleTimeout; the upstream sees an incomplete body', async (t) => {
  const before = upstream.requests.length
  const started = Date.now()
  const outcome = await new Promise<string>((resolve) => {
    const req = request(`${gate.url}/api/studies`, {
      method: 'POST',
      headers: { authorization: auth, 'content-length': String(10 * MB) },
    })
    req.on('response', (res) => resolve(`status ${res.statusCode}`))
    req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? 'error'))
    generated(10 * MB, 1 * MB).pipe(req)
  })
  t.match(outcome, /ECONNRESET|socket hang up|status 5\d\d/, `the client learns it failed (${outcome})`)
  t.ok(Date.now() - started >= 500, 'after the idle timeout')
  const seen = await settled(() => upstream.requests[before])
  t.equal(seen?.bodyComplete, false)
})

t.test('slowloris headers are cut by listen.headersTimeout while other clients are served', async (t) => {
  const sock = connect({ host: '127.0.0.1', port: gate.port })
  await new Promise((r) => sock.once('connect', r))
  let closed = false
  sock.on('close', () => {
    closed = true
  })
  let answer = ''
  sock.on('data', (c) => {
    answer += c
  })
  sock.on('error', () => {})
  sock.write('GET /api/studies HTTP/1.1\r\nHost: x\r\n')
  const drip = setInterval(() => sock.writable && sock.write('X-Slow: 1\r\n'), 100)
  t.teardown(() => clearInterval(drip))
  // Meanwhile a normal client is served.
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(token) })).status, 200)
  await probeUntil(() => closed, Boolean)
  clearInterval(drip)
  t.ok(closed, 'the dripping connection was closed')
  t.match(answer, /^HTTP\/1\.1 408 /, 'with 408 Request Timeout')
})

t.test('an upstream that stops sending mid-body is cut after forward.idleTimeout', async (t) => {
  const started = Date.now()
  const outcome = await new Promise<{ complete: boolean; bytes: number }>((resolve) => {
    const req = request(`${gate.url}/api/stall-body`, { headers: { authorization: auth } }, (res) => {
      let bytes = 0
      res.on('data', (c: Buffer) => {
        bytes += c.length
      })
      res.on('close', () => resolve({ complete: res.complete, bytes }))
    })
    req.on('error', () => resolve({ complete: false, bytes: -1 }))
    req.end()
  })
  t.equal(outcome.complete, false, 'cut, not ended as if complete')
  t.ok(Date.now() - started >= 450, 'after the idle timeout')
  // The access-log line is written when the request's handling ends, just after the cut.
  const line = await waitFor('the access-log line', () =>
    accessLog(gate).find((l) => String(l.path).includes('stall-body')),
  )
  t.equal(line?.reason, 'body', 'logged as an upstream body timeout')
  const seen = upstream.requests.find((r) => r.url.includes('stall-body'))
  t.equal(seen?.aborted, true, 'the upstream saw the connection go')
})

t.test('after all of it the agent holds no socket in use', async (t) => {
  const counts = await probeUntil(
    () => gate.app.forwarder.socketCounts(),
    (c) => c.active === 0,
  )
  t.equal(counts.active, 0)
})
