// DataChain's refresh flow end to end (OAuth 2.0 RFC 6749 §6) against a real redis-server and a
// recording upstream: `token create --refresh` (the CLI), a plain `curl -d grant_type=refresh_token
// -d refresh_token=… -d client_id=…` on /oauth/token, rotation, reuse revoking the whole family
// through the proxy, offline mode, concurrent double use, revocation by refresh id and by user,
// the §5.2 error answers, and the Redis model (admin/refresh.ts) they leave behind.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { AuditEvent } from '../../src/admin/audit.js'
import type { CreatedRefresh } from '../../src/admin/refresh.js'
import { runCliCaptured } from '../helpers/cli.js'
import { startGate } from '../helpers/gate.js'
import { send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { eventuallyStatus, gateStatus } from '../helpers/topology.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
let clock = Date.now()
const ADMIN_KEY = 'k'.repeat(40)
const gate = await startGate({
  redisUrl: redis.url,
  upstream: upstream.url,
  now: () => clock,
  config: { admin: { port: 0, key: ADMIN_KEY } },
})
t.teardown(gate.stop)

const dir = await mkdtemp(join(tmpdir(), 'tokengate-oauth-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = join(dir, 'tokengate.yaml')
await writeFile(
  config,
  `redis: { url: "${redis.url}" }\nmounts: [{ path: /api, upstream: "${upstream.url}" }]\n`,
)

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

async function create(args: string[]): Promise<CreatedRefresh> {
  const res = await runCliCaptured(['token', 'create', ...args, '--json', '--config', config])
  if (res.code !== 0) throw new Error(`create failed: ${res.stderr}`)
  return JSON.parse(res.stdout) as CreatedRefresh
}

interface CurlAnswer {
  status: number
  headers: Record<string, string>
  text: string
  json: Record<string, unknown>
}

/** A plain curl, as a DataChain user would type it; `-i` to see the status and headers. */
function curl(args: string[]): Promise<CurlAnswer> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '-i', ...args], (err, stdout) => {
      if (err) return reject(err)
      const [head = '', ...rest] = stdout.split('\r\n\r\n')
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines) {
        const i = l.indexOf(':')
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
      }
      const text = rest.join('\r\n\r\n')
      let json: Record<string, unknown> = {}
      try {
        json = JSON.parse(text) as Record<string, unknown>
      } catch {}
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text, json })
    })
  })
}

const TOKEN_URL = `${gate.url}/oauth/token`

function refresh(refreshToken: string, clientId = 'datachain'): Promise<CurlAnswer> {
  return curl([
    '-d',
    'grant_type=refresh_token',
    '-d',
    `refresh_token=${refreshToken}`,
    '-d',
    `client_id=${clientId}`,
    TOKEN_URL,
  ])
}

t.test('token create --refresh prints the access token, the refresh token and both expiries', async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-alice',
    '--refresh',
    '--client-id',
    'datachain',
  ])
  t.match(created.token, /^tg_/)
  t.match(created.refreshToken, /^tg_/)
  t.not(created.refreshToken, created.token)
  t.match(created.refreshTokenId, /^rtk_/)
  const accessLife = Date.parse(created.expiresAt) - Date.now()
  t.ok(accessLife > 14 * 60_000 && accessLife <= 15 * 60_000, 'the access token lives 15 minutes by default')
  const refreshLife = Date.parse(created.refreshExpiresAt ?? '') - Date.now()
  t.ok(refreshLife > 89 * 86_400_000 && refreshLife <= 90 * 86_400_000, 'the refresh token 90 days')
  t.equal(created.clientId, 'datachain')

  t.equal(await gateStatus(gate, created.token), 200, 'the access token reaches the upstream')
  t.equal(await gateStatus(gate, created.refreshToken), 401, 'the refresh token is no access credential')
  const record = await redis.client.hgetall(`tg:token:${sha256(created.token)}`)
  t.equal(record.family, created.refreshTokenId, 'the access token record carries its family')
  t.equal(
    await redis.client.exists(`tg:token:${sha256(created.refreshToken)}`),
    0,
    'no token record for a refresh secret',
  )
  const family = await redis.client.hgetall(`tg:rfam:{${created.refreshTokenId}}`)
  t.equal(
    family.current,
    sha256(created.refreshToken),
    'the family stores only the hash of its current secret',
  )
  t.notMatch(JSON.stringify(family), created.refreshToken)
})

t.test(
  'curl -d grant_type=refresh_token … gets a new access token and a rotated refresh token',
  async (t) => {
    const created = await create([
      '--kind',
      'user',
      '--user',
      'dc-bob',
      '--refresh',
      '--client-id',
      'datachain',
    ])
    const res = await refresh(created.refreshToken)
    t.equal(res.status, 200, res.text)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers.pragma, 'no-cache')
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(Object.keys(res.json).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
    t.equal(res.json.token_type, 'Bearer')
    t.equal(res.json.expires_in, 900)
    const access = res.json.access_token as string
    const next = res.json.refresh_token as string
    t.not(access, created.token)
    t.not(next, created.refreshToken, 'the refresh token rotated')
    t.equal(await gateStatus(gate, access), 200, 'the new access token works')
    t.equal(
      await gateStatus(gate, created.token),
      200,
      'the earlier access token still works until it expires',
    )

    const again = await refresh(next)
    t.equal(again.status, 200, 'the rotated refresh token works once more')
    const fam = await redis.client.hgetall(`tg:rfam:{${created.refreshTokenId}}`)
    t.equal(fam.generation, '2')
    t.equal(fam.current, sha256(again.json.refresh_token as string))
    const ids = await redis.client.zrange(`tg:rfam:{${created.refreshTokenId}}:tokens`, 0, -1)
    t.equal(ids.length, 3, 'the family lists the three access tokens it minted')
  },
)

t.test('presenting a used refresh token revokes the whole family, through the proxy', async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-carol',
    '--refresh',
    '--client-id',
    'datachain',
  ])
  const first = await refresh(created.refreshToken)
  const second = await refresh(first.json.refresh_token as string)
  t.equal(second.status, 200)
  const accessTokens = [created.token, first.json.access_token as string, second.json.access_token as string]
  for (const a of accessTokens) t.equal(await gateStatus(gate, a), 200, 'allowed before the reuse')

  const reuse = await refresh(created.refreshToken)
  t.equal(reuse.status, 400)
  t.same(reuse.json, { error: 'invalid_grant', reason: 'the refresh token is not valid' })
  t.equal(reuse.headers['cache-control'], 'no-store')
  t.notMatch(reuse.text, created.refreshToken)
  for (const a of accessTokens)
    t.equal(await eventuallyStatus(gate, a, 401), 401, 'every access token of the family is refused')
  const latest = await refresh(second.json.refresh_token as string)
  t.equal(latest.status, 400, 'the latest refresh token of the family is dead too')
  t.equal(latest.json.error, 'invalid_grant')

  const audit = (
    JSON.parse(
      (await runCliCaptured(['audit', '--json', '--limit', '10000', '--config', config])).stdout,
    ) as { events: AuditEvent[] }
  ).events.filter((e) => e.refreshId === created.refreshTokenId)
  t.same(
    audit.map((e) => e.op),
    ['refresh.create', 'refresh.rotate', 'refresh.rotate', 'refresh.reuse'],
    'create, each rotation and the reuse are audited',
  )
  t.equal(audit.at(-1)?.count, 3, 'the reuse entry says how many access tokens it revoked')
  t.equal(audit[1]?.actor, 'oauth:datachain', 'rotations are audited as the client')
  const everything = JSON.stringify(audit)
  for (const secret of [created.refreshToken, created.token, first.json.refresh_token as string])
    t.notMatch(everything, secret, 'never a secret in the audit trail')
})

t.test('offline mode: refreshExpiresAt is null and the family never expires', async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-dave',
    '--refresh',
    '--offline',
    '--client-id',
    'datachain',
  ])
  t.equal(created.refreshExpiresAt, null)
  const family = `tg:rfam:{${created.refreshTokenId}}`
  t.equal(await redis.client.pttl(family), -1, 'no Redis expiry on the family')
  t.equal(
    await redis.client.pttl(`tg:refresh:${sha256(created.refreshToken)}`),
    -1,
    'nor on its current secret',
  )
  const res = await refresh(created.refreshToken)
  t.equal(res.status, 200)
  const old = await redis.client.pttl(`tg:refresh:${sha256(created.refreshToken)}`)
  t.ok(old > 0 && old <= 90 * 86_400_000, 'a superseded secret is remembered for oauth.reuseWindow')
  t.equal(await redis.client.pttl(`tg:refresh:${sha256(res.json.refresh_token as string)}`), -1)

  // A year later the offline refresh token still works (the access token lives its 15 minutes).
  clock += 365 * 86_400_000
  try {
    const later = await refresh(res.json.refresh_token as string)
    t.equal(later.status, 200, 'still refreshable a year later')
  } finally {
    clock = Date.now()
  }
})

t.test('a refresh token past --refresh-expires is refused', async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-erin',
    '--refresh',
    '--client-id',
    'datachain',
    '--access-ttl',
    '5m',
    '--refresh-expires',
    '1h',
  ])
  t.equal(Date.parse(created.refreshExpiresAt ?? '') - Date.parse(created.createdAt), 3_600_000)
  clock += 2 * 3_600_000
  try {
    const res = await refresh(created.refreshToken)
    t.equal(res.status, 400)
    t.equal(res.json.error, 'invalid_grant')
  } finally {
    clock = Date.now()
  }
  const ok = await refresh(created.refreshToken)
  t.equal(ok.status, 200, 'an expired attempt changed nothing')
  t.equal(ok.json.expires_in, 300, '--access-ttl sets the access token lifetime')
})

t.test('two simultaneous uses of one refresh token: exactly one wins, the other is reuse', async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-frank',
    '--refresh',
    '--client-id',
    'datachain',
  ])
  const answers = await Promise.all([refresh(created.refreshToken), refresh(created.refreshToken)])
  const won = answers.filter((a) => a.status === 200)
  const lost = answers.filter((a) => a.status === 400)
  t.equal(won.length, 1, 'one 200')
  t.equal(lost.length, 1, 'one 400')
  t.equal(lost[0]?.json.error, 'invalid_grant')
  const winner = won[0]?.json ?? {}
  t.equal(
    await eventuallyStatus(gate, winner.access_token as string, 401),
    401,
    "the reuse revoked the family, the winner's access token included",
  )
  t.equal((await refresh(winner.refresh_token as string)).status, 400, "and the winner's refresh token")

  // Many at once (node, not curl): still exactly one winner.
  const many = await create(['--kind', 'user', '--user', 'dc-frank', '--refresh', '--client-id', 'datachain'])
  const body = `grant_type=refresh_token&refresh_token=${many.refreshToken}&client_id=datachain`
  const statuses = await Promise.all(
    Array.from({ length: 8 }, () =>
      send(gate.url, {
        method: 'POST',
        path: '/oauth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      }).then((r) => r.status),
    ),
  )
  t.equal(statuses.filter((s) => s === 200).length, 1, 'one winner among eight')
  t.equal(statuses.filter((s) => s === 400).length, 7)
})

t.test('revoking a refresh token by its id kills every access token it minted', async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-grace',
    '--refresh',
    '--client-id',
    'datachain',
  ])
  const first = await refresh(created.refreshToken)
  const access = [created.token, first.json.access_token as string]
  for (const a of access) t.equal(await gateStatus(gate, a), 200)
  const res = await runCliCaptured(['token', 'revoke', created.refreshTokenId, '--config', config])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, `revoked ${created.refreshTokenId}`)
  for (const a of access) t.equal(await eventuallyStatus(gate, a, 401), 401)
  const after = await refresh(first.json.refresh_token as string)
  t.equal(after.status, 400)
  t.equal(after.json.error, 'invalid_grant')
  const unknown = await runCliCaptured(['token', 'revoke', 'rtk_nothing', '--config', config])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /no refresh token with id "rtk_nothing"/)
})

t.test('the admin API revokes a refresh token by its id too', async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-judy',
    '--refresh',
    '--client-id',
    'datachain',
  ])
  const res = await send(`http://127.0.0.1:${gate.app.adminAddress?.port}`, {
    method: 'POST',
    path: `/tokens/${created.refreshTokenId}/revoke`,
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  })
  t.equal(res.status, 200, res.text)
  t.match(res.json(), { id: created.refreshTokenId, kind: 'refresh', status: 'revoked', revokedTokens: 1 })
  t.equal(await eventuallyStatus(gate, created.token, 401), 401)
  t.equal((await refresh(created.refreshToken)).json.error, 'invalid_grant')
})

t.test("revoking a user's tokens stops their refresh tokens too", async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-heidi',
    '--refresh',
    '--client-id',
    'datachain',
  ])
  const res = await runCliCaptured(['token', 'revoke', '--user', 'dc-heidi', '--json', '--config', config])
  t.equal(res.code, 0, res.stderr)
  t.equal(JSON.parse(res.stdout).revoked, 2, 'the access token and the refresh token')
  t.equal(await eventuallyStatus(gate, created.token, 401), 401)
  t.equal((await refresh(created.refreshToken)).json.error, 'invalid_grant')
})

t.test(
  'the token endpoint answers malformed requests as RFC 6749 §5.2 says, never echoing a secret',
  async (t) => {
    const created = await create([
      '--kind',
      'user',
      '--user',
      'dc-ivan',
      '--refresh',
      '--client-id',
      'datachain',
    ])
    const rt = created.refreshToken
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    const cases: [string, Parameters<typeof send>[1], number, string][] = [
      [
        'another client',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: `grant_type=refresh_token&refresh_token=${rt}&client_id=other`,
        },
        401,
        'invalid_client',
      ],
      [
        'a password grant',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: `grant_type=password&refresh_token=${rt}&client_id=datachain`,
        },
        400,
        'unsupported_grant_type',
      ],
      [
        'no refresh_token',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: 'grant_type=refresh_token&client_id=datachain',
        },
        400,
        'invalid_request',
      ],
      [
        'no client_id',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: `grant_type=refresh_token&refresh_token=${rt}`,
        },
        400,
        'invalid_request',
      ],
      [
        'no grant_type',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: `refresh_token=${rt}&client_id=datachain`,
        },
        400,
        'invalid_request',
      ],
      [
        'a repeated parameter',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: `grant_type=refresh_token&refresh_token=${rt}&refresh_token=${rt}&client_id=datachain`,
        },
        400,
        'invalid_request',
      ],
      [
        'a JSON body',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: rt, client_id: 'datachain' }),
        },
        400,
        'invalid_request',
      ],
      [
        'a GET',
        { method: 'GET', path: `/oauth/token?grant_type=refresh_token&client_id=datachain` },
        400,
        'invalid_request',
      ],
      [
        'an unknown refresh token',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: `grant_type=refresh_token&refresh_token=${rt.slice(0, -1)}${rt.endsWith('x') ? 'y' : 'x'}&client_id=datachain`,
        },
        400,
        'invalid_grant',
      ],
      [
        'an access token as refresh token',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: `grant_type=refresh_token&refresh_token=${created.token}&client_id=datachain`,
        },
        400,
        'invalid_grant',
      ],
      [
        'a 20 KB body',
        {
          method: 'POST',
          path: '/oauth/token',
          headers: form,
          body: `grant_type=refresh_token&refresh_token=${rt}&client_id=datachain&pad=${'x'.repeat(20_000)}`,
        },
        413,
        'payload_too_large',
      ],
    ]
    for (const [name, req, status, error] of cases) {
      const res = await send(gate.url, req)
      t.equal(res.status, status, name)
      t.equal((res.json() as { error: string }).error, error, name)
      t.equal(res.headers['cache-control'], 'no-store', `${name}: no-store`)
      t.notMatch(res.text, rt.slice(3), `${name}: the secret is not echoed`)
    }
    const ok = await refresh(rt)
    t.equal(ok.status, 200, 'none of them used up the refresh token')
    t.notMatch(gate.logs.join('\n'), rt.slice(3), 'nor is it in any log line')
  },
)

t.test('create --refresh refuses what makes no sense, before touching Redis', async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ['--kind', 'album', '--album', 'A', '--perms', 'read', '--refresh'],
      /--refresh is for user and api tokens/,
    ],
    [['--kind', 'user', '--user', 'u', '--refresh', '--expires', '30d'], /drop --expires/],
    [
      ['--kind', 'user', '--user', 'u', '--refresh', '--offline', '--refresh-expires', '30d'],
      /offline refresh token never expires/,
    ],
    [
      ['--kind', 'user', '--user', 'u', '--refresh', '--access-ttl', '2d'],
      /--access-ttl "2d" must be a duration/,
    ],
    [['--kind', 'user', '--user', 'u', '--refresh', '--client-id', 'has space'], /--client-id/],
    [['--kind', 'user', '--user', 'u', '--expires', '1d', '--offline'], /--offline goes with --refresh/],
  ]
  for (const [args, message] of cases) {
    const res = await runCliCaptured(['token', 'create', ...args, '--config', '/nonexistent.yaml'])
    t.equal(res.code, 2, args.join(' '))
    t.match(res.stderr, message)
  }
})

t.test('token show and GET /tokens/{id} show a refresh token family by its rtk_ id', async (t) => {
  const created = await create([
    '--kind',
    'user',
    '--user',
    'dc-show',
    '--refresh',
    '--client-id',
    'datachain',
  ])
  const shown = await runCliCaptured(['token', 'show', created.refreshTokenId, '--config', config])
  t.equal(shown.code, 0, shown.stderr)
  t.match(shown.stdout, new RegExp(`^id\\s+${created.refreshTokenId}$`, 'm'))
  t.match(shown.stdout, /^status\s+active$/m)
  t.match(shown.stdout, /^kind\s+refresh$/m)
  t.match(shown.stdout, /^mints\s+user tokens$/m)
  t.match(shown.stdout, /^user\s+dc-show$/m)
  t.match(shown.stdout, /^client\s+datachain$/m)
  t.notMatch(shown.stdout, created.refreshToken, 'never the secret')
  const json = await runCliCaptured(['token', 'show', created.refreshTokenId, '--json', '--config', config])
  t.equal(json.code, 0, json.stderr)
  t.match(JSON.parse(json.stdout), {
    id: created.refreshTokenId,
    kind: 'refresh',
    accessKind: 'user',
    user: 'dc-show',
    clientId: 'datachain',
    status: 'active',
    revokedAt: null,
  })
  const api = await send(`http://127.0.0.1:${gate.app.adminAddress?.port}`, {
    path: `/tokens/${created.refreshTokenId}`,
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  })
  t.equal(api.status, 200, api.text)
  t.match(api.json(), { id: created.refreshTokenId, kind: 'refresh', status: 'active' })
  t.notMatch(api.text, created.refreshToken, 'never the secret')

  await runCliCaptured(['token', 'revoke', created.refreshTokenId, '--config', config])
  const revoked = await runCliCaptured(['token', 'show', created.refreshTokenId, '--config', config])
  t.match(revoked.stdout, /^status\s+revoked$/m, 'a revoked family shows as revoked')

  const unknown = await runCliCaptured(['token', 'show', 'rtk_nothing', '--config', config])
  t.equal(unknown.code, 2, 'an unknown family is not found')
  const missing = await send(`http://127.0.0.1:${gate.app.adminAddress?.port}`, {
    path: '/tokens/rtk_nothing',
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  })
  t.equal(missing.status, 404)
})

t.test('the admin API creates a refresh token: POST /tokens with refresh', async (t) => {
  const admin = `http://127.0.0.1:${gate.app.adminAddress?.port}`
  const post = (body: unknown) =>
    send(admin, {
      method: 'POST',
      path: '/tokens',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  const res = await post({
    kind: 'user',
    user: 'dc-api',
    refresh: { clientId: 'datachain', accessTtl: '10m', refreshExpires: '30d' },
  })
  t.equal(res.status, 201, res.text)
  const created = res.json() as CreatedRefresh
  t.match(created, { kind: 'user', user: 'dc-api', clientId: 'datachain', refreshTokenId: /^rtk_/ })
  t.equal(res.headers.location, `/tokens/${created.id}`, 'Location names the access token')
  t.ok(Date.parse(created.expiresAt) - Date.now() <= 600_000, 'the access token lives accessTtl')
  t.ok(
    Math.abs(Date.parse(created.refreshExpiresAt ?? '') - (Date.now() + 30 * 86_400_000)) < 60_000,
    'the refresh token lives refreshExpires',
  )
  t.equal(await gateStatus(gate, created.token), 200, 'the access token works through the proxy')
  const refreshed = await refresh(created.refreshToken, 'datachain')
  t.equal(refreshed.status, 200, 'the refresh token works at the token endpoint')

  const offline = await post({ kind: 'api', grants: 'device:*:read', refresh: { offline: true } })
  t.equal(offline.status, 201, offline.text)
  t.match(offline.json(), { kind: 'api', refreshExpiresAt: null, clientId: 'tokengate' })
  const plain = await post({ kind: 'user', user: 'dc-api', refresh: true })
  t.equal(plain.status, 201, 'refresh: true takes the defaults')

  const refusals: [unknown, string][] = [
    [{ kind: 'album', album: 'A', perms: 'read', refresh: true }, 'refresh'],
    [{ kind: 'user', user: 'dc-api', expiresIn: '1d', refresh: true }, 'expiresIn'],
    [{ kind: 'user', user: 'dc-api', refresh: { offline: true, refreshExpires: '1d' } }, 'refreshExpires'],
    [{ kind: 'user', user: 'dc-api', refresh: { lifetime: '1d' } }, 'lifetime'],
    [{ kind: 'user', user: 'dc-api', refresh: 'yes' }, 'refresh'],
  ]
  for (const [body, field] of refusals) {
    const refused = await post(body)
    t.equal(refused.status, 400, `${JSON.stringify(body)}: 400`)
    t.equal((refused.json() as { field?: string }).field, field, `${JSON.stringify(body)}: names ${field}`)
  }
})
