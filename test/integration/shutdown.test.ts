// Graceful shutdown of a real `tokengate serve`: on SIGTERM it stops accepting, reports not ready,
// lets a long download finish, closes Redis and exits 0; past `shutdown.deadline` it cuts what is
// left and still exits 0.

import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { admin } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { serveTokengate, writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-shutdown-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read',
  expiresIn: '1h',
})

function yaml(deadline: string): string {
  return `listen: { host: 127.0.0.1, port: 0 }
redis: { url: "${redis.url}" }
metrics: { port: 0 }
shutdown: { deadline: ${deadline} }
mounts:
  - path: /api
    upstream: ${upstream.url}
    rules: [{ methods: [GET], path: "/**", action: read }]
`
}

function download(url: string): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve) => {
    const req = request(url, { headers: bearer(token) }, (res) => {
      let bytes = 0
      res.on('data', (c: Buffer) => {
        bytes += c.length
      })
      res.on('close', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }))
    })
    req.on('error', () => resolve({ status: 0, bytes: 0, complete: false }))
    req.end()
  })
}

function canConnect(url: string): Promise<boolean> {
  const u = new URL(url)
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port) })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

t.test('SIGTERM during a long download: it completes, new connections are refused, exit 0', async (t) => {
  const gate = await serveTokengate(await writeConfig(dir, 'a.yaml', yaml('10s')))
  t.teardown(() => gate.stop('SIGKILL'))
  const size = 3_000_000
  const started = Date.now()
  const pending = download(`${gate.url}/api/slow-stream/${size}/1500`)
  await new Promise((r) => setTimeout(r, 300))
  const exited = once(gate.proc, 'exit')
  gate.proc.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 150))
  t.equal(await canConnect(gate.url), false, 'the listener no longer accepts')
  const ready = await send(gate.opsUrl ?? '', { path: '/readyz' }).catch(() => null)
  if (ready) t.equal(ready.status, 503, 'readiness says shutting down while draining')
  const got = await pending
  t.same(got, { status: 200, bytes: size, complete: true }, 'the download finished whole')
  const [code] = await exited
  t.equal(code, 0, 'exit 0')
  t.ok(Date.now() - started >= 1400, 'it waited for the download')
  t.match(gate.output(), /SIGTERM, finishing in-flight requests/)
})

t.test('past shutdown.deadline what is left is cut, and the exit is still 0', async (t) => {
  const gate = await serveTokengate(await writeConfig(dir, 'b.yaml', yaml('300ms')))
  t.teardown(() => gate.stop('SIGKILL'))
  const pending = download(`${gate.url}/api/slow-stream/1000000/5000`)
  await new Promise((r) => setTimeout(r, 200))
  const started = Date.now()
  const exited = once(gate.proc, 'exit')
  gate.proc.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0)
  t.ok(Date.now() - started < 3000, `exited at the deadline (${Date.now() - started} ms)`)
  const got = await pending
  t.equal(got.complete, false, 'the unfinished download was cut, not ended as if complete')
})
