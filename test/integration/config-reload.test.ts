// SIGHUP on a running `tokengate serve`: a valid file replaces mounts, rules and cache settings
// without dropping the keep-alive connection or the request in flight; an invalid file is logged
// and the running config stays. Real process, real Redis, recording upstream.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { admin } from '../helpers/gate.js'
import { bearer, keepAliveConnection, send } from '../helpers/http.js'
import { serveTokengate, waitForOutput, writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-reload-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read',
  expiresIn: '1h',
})

const common = `listen: { host: 127.0.0.1, port: 0 }
redis: { url: "${redis.url}" }
metrics: { port: 0 }
`
const before = `${common}mounts:
  - path: /api
    upstream: ${upstream.url}/dicom-web
    rules: [{ methods: [GET], path: "/**", action: read }]
cache: { ttl: 10m }
`
const after = `${common}mounts:
  - path: /api
    upstream: ${upstream.url}/dicom-web
    rules: [{ methods: [GET], path: "/studies/**", action: read }]
  - path: /extra
    upstream: ${upstream.url}/other
cache: { ttl: 1m, max: 500 }
`
const config = await writeConfig(dir, 'tokengate.yaml', before)
const gate = await serveTokengate(config)
t.teardown(() => gate.stop())

async function metric(series: string): Promise<number> {
  const text = (await send(gate.opsUrl ?? '', { path: '/metrics' })).text
  return Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${series} `))
      ?.split(' ')[1] ?? 0,
  )
}

t.test(
  'a valid file takes effect on the open keep-alive connection, and the request in flight completes',
  async (t) => {
    const conn = await keepAliveConnection(gate.url)
    t.teardown(conn.close)
    t.equal((await conn.get('/api/series', bearer(token))).status, 200, 'before: /api/** is allowed')
    t.equal((await conn.get('/extra/studies', bearer(token))).status, 404, 'before: no /extra mount')

    // A download that spans the reload.
    let markStarted: () => void = () => {}
    const started = new Promise<void>((resolve) => {
      markStarted = resolve
    })
    const inflight = new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      request(`${gate.url}/api/slow-stream/200000/800`, { headers: bearer(token) }, (res) => {
        let bytes = 0
        res.on('data', (c: Buffer) => {
          bytes += c.length
          markStarted()
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }))
        res.on('error', reject)
      })
        .on('error', reject)
        .end()
    })
    await started // the download is under way through the old config
    const mark = gate.output().length
    await writeFile(config, after)
    gate.proc.kill('SIGHUP')
    await waitForOutput(gate, /config reloaded/, mark)

    t.equal((await conn.get('/extra/studies', bearer(token))).status, 200, 'after: the new mount answers')
    t.equal(upstream.requests.at(-1)?.url, '/other/studies?album=A')
    t.equal((await conn.get('/api/series', bearer(token))).status, 404, 'after: the narrower rules apply')
    t.equal((await conn.get('/api/studies', bearer(token))).status, 200)
    t.notOk(conn.closed(), 'the same connection served before and after')
    t.same(await inflight, { status: 200, bytes: 200000 }, 'the download in flight finished whole')
    t.notMatch(gate.output().slice(mark), /take effect after a restart/, 'no restart-only section changed')
    t.equal(await metric('tokengate_config_reloads_total{result="ok"}'), 1)
  },
)

t.test('an invalid file is logged with key and line, and the running config stays', async (t) => {
  const mark = gate.output().length
  await writeFile(config, `${common}mounts:\n  - path: /api\n    upstream: not-a-url\ncache: { ttl: soon }\n`)
  gate.proc.kill('SIGHUP')
  await waitForOutput(gate, /config reload refused/, mark)
  const logged = gate.output().slice(mark)
  t.match(logged, /tokengate\.yaml:6: mounts\[0\]\.upstream: expected an http/)
  t.match(logged, /cache\.ttl: expected a duration/)
  t.equal(
    (await send(gate.url, { path: '/extra/studies', headers: bearer(token) })).status,
    200,
    'still the last good config',
  )
  t.equal(await metric('tokengate_config_reloads_total{result="invalid"}'), 1)
})

t.test('changing the listener is reported as needing a restart', async (t) => {
  const mark = gate.output().length
  await writeFile(config, after.replace('port: 0 }', 'port: 1 }'))
  gate.proc.kill('SIGHUP')
  await waitForOutput(gate, /config reloaded/, mark)
  t.match(gate.output().slice(mark), /take effect after a restart/)
  t.equal(
    (await send(gate.url, { path: '/extra/studies', headers: bearer(token) })).status,
    200,
    'still serving where it was',
  )
})
