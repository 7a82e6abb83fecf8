// Tracing a leaked secret (issue 14.3) against a real redis-server: `token identify` reads the
// secret on standard input and prints the token's id, kind, user, album, status and creator (never
// the secret); `--revoke` revokes it; `POST /tokens/identify` the same over the admin API; and
// `token show <secret>` (a secret pasted where an id goes) does not echo it back.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runCliCaptured } from '../helpers/cli.js'
import { startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const KEY = 'test-admin-key-0123456789abcdefghijklmnop'
const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  config: { admin: { port: 0, key: KEY } },
})
t.teardown(gate.stop)
const adminUrl = `http://127.0.0.1:${gate.app.adminAddress?.port}`
const dir = await mkdtemp(join(tmpdir(), 'tokengate-identify-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = join(dir, 'tokengate.yaml')
await writeFile(
  config,
  `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n`,
)
const cli = (args: string[], stdin = '') => runCliCaptured([...args, '--config', config], stdin)

const made = await cli([
  'token',
  'create',
  '--kind',
  'album',
  '--album',
  'LEAK',
  '--perms',
  'read',
  '--user',
  'carol',
  '--expires',
  '7d',
  '--actor',
  'alice',
  '--json',
])
const created = JSON.parse(made.stdout) as { id: string; token: string }

t.test(
  'identify prints the token of a secret read on stdin, with its creator, never the secret',
  async (t) => {
    const res = await cli(['token', 'identify'], `${created.token}\n`)
    t.equal(res.code, 0, res.stderr)
    t.match(res.stdout, new RegExp(`id\\s+${created.id}`))
    t.match(res.stdout, /status\s+active/)
    t.match(res.stdout, /user\s+carol/)
    t.match(res.stdout, /album\s+LEAK/)
    t.match(res.stdout, /created by\s+alice/)
    t.notMatch(res.stdout + res.stderr, created.token)
    const json = await cli(['token', 'identify', '--json'], created.token)
    t.match(JSON.parse(json.stdout), { id: created.id, kind: 'album', createdBy: 'alice', status: 'active' })
    t.notMatch(json.stdout, created.token)
  },
)

t.test('an unknown secret, or none, is refused without echoing it', async (t) => {
  const other = 'tg_thisSecretWasNeverIssuedHere0123456789ab'
  const res = await cli(['token', 'identify'], other)
  t.equal(res.code, 2)
  t.match(res.stderr, /no token has this secret/)
  t.notMatch(res.stdout + res.stderr, other)
  t.match(await cli(['token', 'identify'], ''), { code: 2, stderr: /no secret given/ })
  const shown = await cli(['token', 'show', created.token])
  t.equal(shown.code, 2)
  t.notMatch(shown.stdout + shown.stderr, created.token, 'token show does not echo a secret')
  t.match(shown.stderr, /token identify/)
})

t.test('the admin API identifies a secret in the body, and --revoke / revoke: true revoke it', async (t) => {
  const call = (body: unknown) =>
    send(adminUrl, {
      method: 'POST',
      path: '/tokens/identify',
      headers: { 'content-type': 'application/json', ...bearer(KEY) },
      body: JSON.stringify(body),
    })
  const found = await call({ secret: created.token })
  t.equal(found.status, 200, found.text)
  t.match(found.json(), { id: created.id, user: 'carol', status: 'active' })
  t.notMatch(found.text, created.token)
  const missing = await call({})
  t.equal(missing.status, 400)
  t.match(missing.json(), { field: 'secret' })
  const unknown = await call({ secret: 'tg_nope' })
  t.equal(unknown.status, 404)
  t.notMatch(unknown.text, 'tg_nope')
  t.notMatch(gate.logs.join('\n'), created.token, 'no log line carries the secret')

  const second = JSON.parse(
    (await cli(['token', 'create', '--kind', 'user', '--user', 'dave', '--expires', '7d', '--json'])).stdout,
  ) as { id: string; token: string }
  const revoked = await cli(['token', 'identify', '--revoke'], second.token)
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, `revoked ${second.id}`)
  t.match(revoked.stdout, /status\s+revoked/)
  const viaApi = await call({ secret: created.token, revoke: true })
  t.match(viaApi.json(), { id: created.id, status: 'revoked' })
  const status = (
    await send(gate.url, { method: 'GET', path: '/api/studies', headers: bearer(created.token) })
  ).status
  t.equal(status, 401, 'the gate refuses the revoked token')
})
