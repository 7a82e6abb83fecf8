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
import { serveTokengate, waitForOutput, writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

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

interface Download {
  /** Resolves at the first body bytes: the request is in flight through tokengate. */
  started: Promise<void>
  done: Promise<{ status: number; bytes: number; complete: boolean }>
}

function download(url: string): Download {
  let markStarted: () => void = () => {}
  const started = new Promise<void>((resolve) => {
    markStarted = resolve
  })
  const done = new Promise<{ status: number; bytes: number; complete: boolean }>((resolve) => {
    const req = request(url, { headers: bearer(token) }, (res) => {
      let bytes = 0
      res.on('data', (c: Buffer) => {
        bytes += c.length
        markStarted()
      })
      res.on('close', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }))
    })
    req.on('error', () => resolve({ status: 0, bytes: 0, complete: false }))
    req.end()
  })
  return { started, done }
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
  const pending = download(`${gate.url}/api/slow-stream/${size}/1500`)
  await pending.started
  const exited = once(gate.proc, 'exit')
  gate.proc.kill('SIGTERM')
  await waitForOutput(gate, /SIGTERM, finishing in-flight requests/)
  await waitFor('the listener to stop accepting', async () => !(await canConnect(gate.url)))
  // The operations listener closes after the public one has drained: it answers meanwhile.
  const ready = await send(gate.opsUrl ?? '', { path: '/readyz' })
  t.equal(ready.status, 503, 'readiness says shutting down while draining')
  t.match(ready.json(), { checks: { shutdown: 'shutting down' } })
  t.equal(gate.proc.exitCode, null, 'still running while the download is in flight')
  const got = await pending.done
  // Complete: it waited for the download (a stop that did not wait would have cut it).
  t.same(got, { status: 200, bytes: size, complete: true }, 'the download finished whole')
  const [code] = await exited
  t.equal(code, 0, 'exit 0')
})

t.test('past shutdown.deadline what is left is cut, and the exit is still 0', async (t) => {
  const gate = await serveTokengate(await writeConfig(dir, 'b.yaml', yaml('300ms')))
  t.teardown(() => gate.stop('SIGKILL'))
  // 5 s of download against a 300 ms deadline: only the deadline can end it before its time.
  const pending = download(`${gate.url}/api/slow-stream/1000000/5000`)
  await pending.started
  const exited = once(gate.proc, 'exit')
  gate.proc.kill('SIGTERM')
  const got = await pending.done
  t.equal(got.complete, false, 'the unfinished download was cut, not ended as if complete')
  t.ok(got.bytes < 1_000_000, `cut short (${got.bytes} of 1000000 bytes)`)
  const [code] = await exited
  t.equal(code, 0)
})
