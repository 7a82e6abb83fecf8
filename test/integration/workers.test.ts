// `workers: 2` on a real process tree: both workers share the port and serve; each has its own
// cache and still refuses a revoked token at once; the primary's /metrics sums both; a killed
// worker, and one that dies of an uncaught exception (logged), is replaced by one that serves;
// SIGHUP reaches every worker; SIGTERM stops them all with exit 0.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
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
const dir = await mkdtemp(join(tmpdir(), 'tokengate-workers-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const tokens = admin(redis.client)

const config = await writeConfig(
  dir,
  'tokengate.yaml',
  `listen: { host: 127.0.0.1, port: 0 }
redis: { url: "${redis.url}" }
metrics: { port: 0 }
workers: 2
cache: { ttl: 10m }
mounts:
  - path: /api
    upstream: ${upstream.url}/dicom-web
`,
)
// SIGUSR2 makes a process throw from an event handler: an uncaught exception, as a bug would.
const crashFixture = join(import.meta.dirname, '..', 'fixtures', 'process', 'crash-on-sigusr2.js')
const gate = await serveTokengate(config, ['--import', crashFixture])
t.teardown(() => gate.stop('SIGKILL'))
await waitForOutput(gate, /tokengate listening[\s\S]*tokengate listening/)

/** Worker pids from their "listening" lines, in order of appearance. */
function workerPids(): number[] {
  return [...gate.output().matchAll(/"pid":(\d+)[^\n]*"msg":"tokengate listening"/g)].map((m) => Number(m[1]))
}
function servedBy(from = 0): Set<number> {
  return new Set(
    [
      ...gate
        .output()
        .slice(from)
        .matchAll(/"pid":(\d+)[^\n]*"msg":"request"/g),
    ].map((m) => Number(m[1])),
  )
}
/** Answers by status so far (the metrics must count exactly these). */
const answered = new Map<number, number>()
async function studies(token: string): Promise<number> {
  const { status } = await send(gate.url, { path: '/api/studies', headers: bearer(token) })
  answered.set(status, (answered.get(status) ?? 0) + 1)
  return status
}
async function metric(series: string): Promise<number> {
  const text = (await send(gate.opsUrl ?? '', { path: '/metrics' })).text
  return text
    .split('\n')
    .filter((l) => l.startsWith(series))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
}

t.test('both workers serve the shared port, and a revoke reaches both caches at once', async (t) => {
  const pids = workerPids()
  t.equal(new Set(pids).size, 2, 'two worker processes')
  const token = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  for (let i = 0; i < 20; i++) t.equal(await studies(token.token), 200)
  // Access-log lines are written in batches (up to 250 ms): wait for both workers' lines.
  await waitFor('both workers to log requests', () => servedBy().size === 2)
  t.same([...servedBy()].sort(), [...pids].sort(), 'requests reached both workers')
  await tokens.revoke(token.id)
  // The message reaches each worker on its own socket: wait until a round over both refuses it.
  await waitFor('the revoke to reach both workers', async () =>
    (await Promise.all([1, 2, 3, 4].map(() => studies(token.token)))).every((s) => s === 401),
  )
  const after = []
  for (let i = 0; i < 20; i++) after.push(await studies(token.token))
  t.same(new Set(after), new Set([401]), 'every worker refuses it although both had it cached for 10 minutes')
})

t.test("the primary's /metrics sums the workers", async (t) => {
  t.equal(
    await metric('tokengate_requests_total{mount="/api",method="read",outcome="allowed"'),
    answered.get(200),
  )
  t.equal(
    await metric('tokengate_requests_total{mount="/api",method="read",outcome="denied",reason="revoked"'),
    answered.get(401),
  )
  t.equal(await metric('tokengate_workers '), 2)
  const ready = await send(gate.opsUrl ?? '', { path: '/readyz' })
  t.equal(ready.status, 200)
  t.equal((ready.json() as { checks: Record<string, string> }).checks.workers, 'ok')
})

t.test('a killed worker is replaced and serving goes on', async (t) => {
  const [victim] = workerPids()
  const mark = gate.output().length
  process.kill(victim as number, 'SIGKILL')
  await waitForOutput(gate, /worker died; replacing it/, mark)
  await waitForOutput(gate, /tokengate listening/, mark)
  const token = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  for (let i = 0; i < 6; i++) t.equal(await studies(token.token), 200)
  t.equal(await metric('tokengate_worker_restarts_total'), 1)
})

t.test(
  'a worker that dies of an uncaught exception is logged, replaced, and the new one serves',
  async (t) => {
    const [victim, survivor] = workerPids().slice(-2)
    const mark = gate.output().length
    process.kill(victim as number, 'SIGUSR2')
    await waitForOutput(gate, /"msg":"uncaught exception; exiting"/, mark)
    t.match(gate.output().slice(mark), /crash requested by a test/, 'the exception is logged')
    await waitForOutput(gate, /worker died; replacing it/, mark)
    t.match(gate.output().slice(mark), new RegExp(`"workerPid":${victim},"code":1`), 'it exited with code 1')
    await waitForOutput(gate, /tokengate listening/, mark)
    const replacement = workerPids().at(-1)
    t.not(replacement, victim)
    t.not(replacement, survivor)
    const token = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
    await waitFor('the new worker to serve a request', async () => {
      t.equal(await studies(token.token), 200)
      return servedBy(mark).has(replacement as number)
    })
    t.equal(await metric('tokengate_worker_restarts_total'), 2)
  },
)

t.test('SIGHUP reaches every worker; SIGTERM stops them all and the primary exits 0', async (t) => {
  const mark = gate.output().length
  gate.proc.kill('SIGHUP')
  await waitForOutput(gate, /config reloaded[\s\S]*config reloaded/, mark)
  const exited = once(gate.proc, 'exit')
  gate.proc.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0)
  for (const pid of workerPids().slice(-2)) {
    let gone = false
    try {
      process.kill(pid, 0)
    } catch {
      gone = true
    }
    t.ok(gone, `worker ${pid} is gone`)
  }
})
