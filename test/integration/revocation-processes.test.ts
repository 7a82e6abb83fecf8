// The CLI round trip across real processes: `token create` → use through two running tokengate
// processes on one Redis → `token revoke` → both refuse the token on their next request, although
// both had it cached.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { bearer, send } from '../helpers/http.js'
import { runTokengate, serveTokengate, writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-revoke-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

const config = await writeConfig(
  dir,
  'tokengate.yaml',
  `listen: { host: 127.0.0.1, port: 0 }
redis: { url: "${redis.url}" }
mounts:
  - path: /api
    upstream: ${upstream.url}/dicom-web
cache: { ttl: 10m }
metrics: { port: 0 }
`,
)

t.test('check-config accepts the file', async (t) => {
  const res = await runTokengate(['check-config', '--config', config])
  t.equal(res.code, 0, res.stderr)
})

t.test('create → use on two processes → revoke → both refuse at once', async (t) => {
  const created = await runTokengate([
    'token',
    'create',
    '--config',
    config,
    '--kind',
    'album',
    '--album',
    'A1',
    '--perms',
    'read',
    '--expires',
    '1h',
    '--json',
  ])
  t.equal(created.code, 0, created.stderr)
  const { id, token } = JSON.parse(created.stdout) as { id: string; token: string }

  const one = await serveTokengate(config)
  t.teardown(() => one.stop())
  const two = await serveTokengate(config)
  t.teardown(() => two.stop())

  for (const gate of [one, two]) {
    t.equal(
      (await send(gate.url, { path: '/api/studies', headers: bearer(token) })).status,
      200,
      'allowed and now cached',
    )
  }
  const revoked = await runTokengate(['token', 'revoke', id, '--config', config])
  t.equal(revoked.code, 0, revoked.stderr)
  // The cache TTL is 10 minutes: only the pub/sub invalidation can make this pass.
  for (const gate of [one, two]) {
    t.equal(
      (await send(gate.url, { path: '/api/studies', headers: bearer(token) })).status,
      401,
      'refused at once',
    )
  }
  for (const gate of [one, two]) t.notMatch(gate.output(), token, 'the secret is in no process output')
})

t.test('SIGTERM stops serve with exit code 0', async (t) => {
  const gate = await serveTokengate(config)
  t.equal(await gate.stop('SIGTERM'), 0)
})
