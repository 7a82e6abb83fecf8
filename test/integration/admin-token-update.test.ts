// `tokengate token update` and the admin API's `PATCH /tokens/{id}` (issue 13 point 3, the admin
// side) against a real redis-server and an in-process gate: grants are added and removed in their
// canonical spelling without a new secret, enable/disable reach the gate at once, a revoked token
// stays revoked, bad input changes nothing, and every update is audited.
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { AuditEvent } from '../../src/admin/audit.js'
import { runCliCaptured } from '../helpers/cli.js'
import { startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { eventuallyStatus } from '../helpers/topology.js'
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
const dir = await mkdtemp(join(tmpdir(), 'tokengate-token-update-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = join(dir, 'tokengate.yaml')
await writeFile(
  config,
  `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/x" }]\n`,
)

const cli = (args: string[]) => runCliCaptured([...args, '--config', config])
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
const through = async (token: string) =>
  (await send(gate.url, { method: 'GET', path: '/api/studies', headers: bearer(token) })).status

async function create(kind: 'album' | 'api' = 'album'): Promise<{ id: string; token: string }> {
  const args =
    kind === 'api'
      ? ['--kind', 'api', '--grant', 'device:device42:GetDeviceStats,AccessDeviceResources']
      : ['--kind', 'album', '--album', 'UP', '--perms', 'read']
  const res = await cli(['token', 'create', ...args, '--expires', '1d', '--json'])
  if (res.code !== 0) throw new Error(res.stderr)
  return JSON.parse(res.stdout)
}

t.test(
  'token update adds and removes grants of an api token in canonical form, keeping the secret',
  async (t) => {
    const tok = await create('api')
    const key = `tg:token:${sha256(tok.token)}`
    t.same(JSON.parse((await redis.client.hget(key, 'grants')) ?? ''), [
      'device:device42:AccessDeviceResources,GetDeviceStats',
    ])
    const res = await cli([
      'token',
      'update',
      tok.id,
      '--grant',
      'bucket:*:ReadBucket',
      '--remove-grant',
      'device:device42:GetDeviceStats,AccessDeviceResources',
      '--json',
    ])
    t.equal(res.code, 0, res.stderr)
    t.same(JSON.parse(res.stdout).grants, ['bucket:*:ReadBucket'])
    t.same(JSON.parse((await redis.client.hget(key, 'grants')) ?? ''), ['bucket:*:ReadBucket'])
    t.equal(await redis.client.get(`tg:id:${tok.id}`), sha256(tok.token), 'the same secret')

    for (const [args, message] of [
      [['token', 'update', tok.id], /nothing to change/],
      [['token', 'update', tok.id, '--grant', 'device'], /TYPE:ID:ACTION/],
      [['token', 'update', 'tok_\nx', '--disable'], /U\+000a/],
      [['token', 'update', tok.id, '--enable', '--disable'], /not both/],
      [['token', 'update', 'tok_nothere', '--disable'], /no token with id/],
    ] as [string[], RegExp][]) {
      const refused = await cli(args)
      t.equal(refused.code, 2, args.join(' '))
      t.match(refused.stderr, message)
    }
  },
)

t.test(
  'PATCH /tokens/{id} disables and enables a live token on the gate at once, and is audited',
  async (t) => {
    const tok = await create()
    const patch = (body: unknown) =>
      send(adminUrl, {
        method: 'PATCH',
        path: `/tokens/${tok.id}`,
        headers: { ...bearer(KEY), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    t.equal(await through(tok.token), 200)
    const off = await patch({ enabled: false, description: 'paused' })
    t.equal(off.status, 200, off.text)
    t.match(off.json(), { status: 'disabled', description: 'paused' })
    t.equal(await eventuallyStatus(gate, tok.token, 401), 401, 'the gate refuses it')
    t.match((await patch({ enabled: true })).json(), { status: 'active' })
    t.equal(await eventuallyStatus(gate, tok.token, 200), 200, 'and accepts it again')

    const bad = await patch({ add: ['nope'] })
    t.match([bad.status, bad.json()], [400, { field: 'grant' }])
    const unknown = await patch({ scopes: ['x'] })
    t.match([unknown.status, unknown.json()], [400, { field: 'scopes' }])

    t.equal((await cli(['token', 'revoke', tok.id])).code, 0)
    const again = await patch({ enabled: true })
    t.match([again.status, again.json()], [400, { reason: /revocation is permanent/ }])

    const events = (
      (await send(adminUrl, { method: 'GET', path: '/audit', headers: bearer(KEY) })).json() as {
        events: AuditEvent[]
      }
    ).events.filter((e) => e.tokenId === tok.id && e.op === 'token.update')
    t.same(
      events.map((e) => [e.actor, e.enabled]),
      [
        ['admin-api', 'false'],
        ['admin-api', 'true'],
      ],
    )
  },
)
