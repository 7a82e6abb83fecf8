// Users with attributes and a lifecycle (issue 13 points 1 and 2) against a real redis-server,
// two in-process gates (replicas) and a recording upstream: `tokengate user …` and the admin API's
// `/users` store and show users; token attributes are inherited from the user, shown by token
// show/list and forwarded upstream under identityHeaders.attributes (client copies stripped) —
// Q's department token end to end; deactivating a user (DataChain) stops every token of it on
// every replica without a Redis call on cache hits, refuses new tokens, and is audited; a user
// past its validity (injected clock) is refused; users.registry: required refuses unknown users.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { AuditEvent } from '../../src/admin/audit.js'
import { type CliRun, runCliCaptured } from '../helpers/cli.js'
import { startGate } from '../helpers/gate.js'
import { bearer, type RawResponse, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { iotMount } from '../helpers/resources.js'
import { eventuallyStatus } from '../helpers/topology.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const KEY = 'test-admin-key-0123456789abcdefghijklmnop'
const HOUR = 3_600_000
const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)

// The gates' clock: real time plus an offset a test may move forward.
let offset = 0
const now = () => Date.now() + offset

const gateOptions = {
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  now,
  config: {
    identityHeaders: {
      attributes: { department: 'X-Tokengate-Department', type: 'X-Tokengate-User-Type' },
    },
    tokens: { lastUsedInterval: 0 },
  },
}
const gateA = await startGate({
  ...gateOptions,
  config: { ...gateOptions.config, admin: { port: 0, key: KEY } },
})
t.teardown(gateA.stop)
const gateB = await startGate(gateOptions)
t.teardown(gateB.stop)
const adminUrl = `http://127.0.0.1:${gateA.app.adminAddress?.port}`

const dir = await mkdtemp(join(tmpdir(), 'tokengate-admin-users-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const MOUNT = 'mounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n'
const config = join(dir, 'tokengate.yaml')
await writeFile(config, `redis: { url: "${redis.url}" }\n${MOUNT}`)
const required = join(dir, 'required.yaml')
await writeFile(required, `redis: { url: "${redis.url}" }\nusers: { registry: required }\n${MOUNT}`)

function cli(args: string[], configPath = config): Promise<CliRun> {
  return runCliCaptured([...args, '--config', configPath, '--actor', 'jane-admin'])
}

async function ok(args: string[], configPath = config): Promise<string> {
  const res = await cli(args, configPath)
  if (res.code !== 0) throw new Error(`${args.join(' ')}: ${res.stderr}`)
  return res.stdout
}

async function createToken(args: string[], configPath = config): Promise<{ id: string; token: string }> {
  return JSON.parse(await ok(['token', 'create', ...args, '--json'], configPath))
}

function api(method: string, path: string, body?: unknown): Promise<RawResponse> {
  return send(adminUrl, {
    method,
    path,
    headers: body === undefined ? bearer(KEY) : { ...bearer(KEY), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
}

async function through(
  gate: { url: string },
  token: string,
  headers: Record<string, string> = {},
): Promise<number> {
  return (
    await send(gate.url, { method: 'GET', path: '/api/studies', headers: { ...bearer(token), ...headers } })
  ).status
}

async function commandsProcessed(): Promise<number> {
  const info = await redis.client.info('stats')
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1])
}

t.test('user add, show, list and set keep a user with name, email, attributes and validity', async (t) => {
  const added = JSON.parse(
    await ok([
      'user',
      'add',
      'jane',
      '--name',
      'Jane Doe',
      '--email',
      'jane@example.org',
      '--attr',
      'department=radiology',
      '--attr',
      'type=mobile',
      '--json',
    ]),
  )
  t.match(added, {
    id: 'jane',
    name: 'Jane Doe',
    email: 'jane@example.org',
    attrs: { department: 'radiology', type: 'mobile' },
    status: 'active',
    validUntil: null,
    lastActiveAt: null,
  })
  const again = await cli(['user', 'add', 'jane'])
  t.equal(again.code, 2)
  t.match(again.stderr, /exists already/)

  const shown = await ok(['user', 'show', 'jane'])
  t.match(shown, /name\s+Jane Doe/)
  t.match(shown, /attrs\s+department=radiology,type=mobile/)
  const listed = await ok(['user', 'list'])
  t.match(listed, /^ID\s+STATUS\s+NAME\s+EMAIL\s+ATTRS\s+VALID UNTIL\s+LAST ACTIVE\n/)
  t.match(listed, /jane\s+active\s+Jane Doe\s+jane@example.org\s+department=radiology,type=mobile/)

  const set = JSON.parse(
    await ok(['user', 'set', 'jane', '--attr', 'type=', '--valid-until', '2099-01-01', '--json']),
  )
  t.same(set.attrs, { department: 'radiology' }, 'type= removes the attribute')
  t.equal(set.validUntil, '2099-01-01T00:00:00.000Z')
  await ok(['user', 'set', 'jane', '--attr', 'type=mobile', '--valid-until', 'none'])
  t.equal(JSON.parse(await ok(['user', 'show', 'jane', '--json'])).validUntil, null)

  for (const [args, message] of [
    [['user', 'add', 'bad\nid'], /contains character U\+000a/],
    [['user', 'add', 'x1', '--email', 'not-an-email'], /not an email/],
    [['user', 'add', 'x2', '--attr', 'department'], /must be key=value/],
    [['user', 'add', 'x3', '--attr', 'dep=\u00e9'], /printable ASCII/],
    [['user', 'add', 'x4', '--valid-until', 'soon'], /not a date/],
    [['user', 'set', 'nobody', '--name', 'N'], /no user "nobody"/],
    [['user', 'set', 'jane'], /nothing to change/],
  ] as [string[], RegExp][]) {
    const res = await cli(args)
    t.equal(res.code, 2, args.join(' '))
    t.match(res.stderr, message)
  }
  t.equal(await redis.client.exists('tg:user:x1'), 0, 'a refused add stores nothing')
})

t.test(
  "Q: a token inherits its user's department and type, shows them, and the upstream gets them as headers, never the client's",
  async (t) => {
    const token = await createToken(['--kind', 'user', '--user', 'jane', '--expires', '30d'])
    const shown = JSON.parse(await ok(['token', 'show', token.id, '--json']))
    t.same(shown.attrs, { department: 'radiology', type: 'mobile' })
    t.match(await ok(['token', 'list', '--user', 'jane', '--wide']), /department=radiology,type=mobile/)

    const before = upstream.requests.length
    t.equal(
      await through(gateA, token.token, {
        'X-Tokengate-Department': 'cardiology',
        'x-tokengate-user-type': 'admin',
      }),
      200,
    )
    const seen = upstream.requests.at(-1)
    t.equal(upstream.requests.length, before + 1)
    t.equal(seen?.headers['x-tokengate-department'], 'radiology', "the token's department, not the client's")
    t.equal(seen?.headers['x-tokengate-user-type'], 'mobile')
    t.equal(seen?.headers['x-tokengate-user'], 'jane')

    const oncology = await createToken([
      '--kind',
      'album',
      '--album',
      'ONC',
      '--perms',
      'read',
      '--user',
      'jane',
      '--attr',
      'department=oncology',
      '--attr',
      'type=',
      '--expires',
      '1d',
    ])
    t.equal(await through(gateA, oncology.token, { 'x-tokengate-department': 'radiology' }), 200)
    t.equal(upstream.requests.at(-1)?.headers['x-tokengate-department'], 'oncology', '--attr overrides')
    t.notOk('x-tokengate-user-type' in (upstream.requests.at(-1)?.headers ?? {}), 'type= drops it')

    const plain = await createToken([
      '--kind',
      'album',
      '--album',
      'ONC',
      '--perms',
      'read',
      '--expires',
      '1d',
    ])
    t.equal(await through(gateA, plain.token, { 'x-tokengate-department': 'radiology' }), 200)
    t.notOk(
      'x-tokengate-department' in (upstream.requests.at(-1)?.headers ?? {}),
      'a token without the attribute sends none, and the client copy is stripped',
    )
  },
)

t.test(
  "Q: a department-restricted api token reaches only its user's department through a resource rule",
  async (t) => {
    const iot = await startGate({
      ...gateOptions,
      config: { ...gateOptions.config, mounts: [iotMount(`${upstream.url}/v1`)] },
    })
    t.teardown(iot.stop)
    await ok(['user', 'add', 'q-amy', '--attr', 'department=radiology'])
    const own = await createToken([
      '--kind',
      'api',
      '--user',
      'q-amy',
      '--grant',
      'department:*:read',
      '--expires',
      '30d',
    ])
    const other = await createToken([
      '--kind',
      'api',
      '--user',
      'q-amy',
      '--grant',
      'department:*:read',
      '--attr',
      'department=cardiology',
      '--expires',
      '30d',
    ])
    const get = async (token: string, dept: string) =>
      (await send(iot.url, { path: `/iot/departments/${dept}/studies`, headers: bearer(token) })).status
    t.equal(await get(own.token, 'radiology'), 200, "the user's department")
    t.equal(upstream.requests.at(-1)?.url, '/v1/departments/radiology/studies')
    t.equal(upstream.requests.at(-1)?.headers['x-tokengate-department'], 'radiology')
    t.equal(await get(own.token, 'cardiology'), 403, 'another department')
    t.equal(await get(other.token, 'cardiology'), 200, 'the token-level override')
    t.equal(await get(other.token, 'radiology'), 403)
  },
)

t.test(
  'DataChain: deactivating a user stops every token of it on both replicas, with no Redis call on a cache hit; activate restores them',
  async (t) => {
    await ok(['user', 'add', 'dc-bob', '--attr', 'department=lab'])
    const tokens = [
      await createToken(['--kind', 'user', '--user', 'dc-bob', '--expires', '1d']),
      await createToken(['--kind', 'user', '--user', 'dc-bob', '--expires', '2d']),
      await createToken([
        '--kind',
        'album',
        '--album',
        'DC',
        '--perms',
        'read',
        '--user',
        'dc-bob',
        '--expires',
        '1d',
      ]),
    ]
    const other = await createToken(['--kind', 'user', '--user', 'jane', '--expires', '1d'])
    for (const gate of [gateA, gateB]) {
      for (const tok of [...tokens, other]) t.equal(await through(gate, tok.token), 200)
    }

    // Cached now: more requests cost Redis nothing (the user's status rides in the cached record).
    const before = await commandsProcessed()
    for (const gate of [gateA, gateB]) for (const tok of tokens) t.equal(await through(gate, tok.token), 200)
    t.ok((await commandsProcessed()) - before <= 1, 'cache hits sent no command (the INFO itself aside)')

    const res = await cli(['user', 'deactivate', 'dc-bob'])
    t.equal(res.code, 0, res.stderr)
    t.equal(res.stdout, 'deactivated dc-bob\n')
    for (const gate of [gateA, gateB]) {
      for (const tok of tokens) {
        t.ok((await eventuallyStatus(gate, tok.token, 401)) === 401, `${tok.id} refused`)
      }
      t.equal(await through(gate, other.token), 200, "another user's token still works")
    }
    const refused = gateA.logs
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === 'request' && l.status === 401)
    t.match(refused.at(-1), { reason: 'user_inactive' })

    const create = await cli(['token', 'create', '--kind', 'user', '--user', 'dc-bob', '--expires', '1d'])
    t.equal(create.code, 2, 'no new token for a deactivated user')
    t.match(create.stderr, /user dc-bob is deactivated/)
    t.match(JSON.parse(await ok(['user', 'show', 'dc-bob', '--json'])), { status: 'deactivated' })

    await ok(['user', 'activate', 'dc-bob'])
    for (const gate of [gateA, gateB]) {
      for (const tok of tokens) {
        t.ok((await eventuallyStatus(gate, tok.token, 200)) === 200, `${tok.id} works again`)
      }
    }
    const events = (JSON.parse(await ok(['audit', '--json'])) as { events: AuditEvent[] }).events.filter(
      (e) => e.user === 'dc-bob',
    )
    t.same(
      events.filter((e) => e.op.startsWith('user.')).map((e) => [e.op, e.actor]),
      [
        ['user.add', 'jane-admin'],
        ['user.deactivate', 'jane-admin'],
        ['user.activate', 'jane-admin'],
      ],
    )
  },
)

t.test("a user's tokens stop when its validUntil passes, on the gate's own clock", async (t) => {
  const until = new Date(now() + HOUR).toISOString()
  await ok(['user', 'add', 'dc-carol', '--valid-until', until])
  const token = await createToken(['--kind', 'user', '--user', 'dc-carol', '--expires', '1d'])
  t.equal(await through(gateB, token.token), 200)
  offset = 2 * HOUR
  t.teardown(() => {
    offset = 0
  })
  t.equal(await through(gateB, token.token), 401, 'past validUntil: refused from the cached record')
  offset = 0
  await ok(['user', 'set', 'dc-carol', '--valid-until', '2020-01-01'])
  t.ok((await eventuallyStatus(gateB, token.token, 401)) === 401, 'a validUntil in the past')
  t.match(JSON.parse(await ok(['user', 'show', 'dc-carol', '--json'])), { status: 'expired' })
})

t.test('with users.registry: required, tokens are created only for known, active users', async (t) => {
  const unknown = await cli(
    ['token', 'create', '--kind', 'user', '--user', 'stranger', '--expires', '1d'],
    required,
  )
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /no user "stranger" \(users.registry is required\)/)
  const noUser = await cli(
    ['token', 'create', '--kind', 'album', '--album', 'R', '--perms', 'read', '--expires', '1d'],
    required,
  )
  t.equal(noUser.code, 2)
  t.match(noUser.stderr, /give the token a user/)
  await ok(['user', 'add', 'stranger'], required)
  const made = await createToken(['--kind', 'user', '--user', 'stranger', '--expires', '1d'], required)
  t.equal(await through(gateA, made.token), 200)
  const optional = await createToken(['--kind', 'user', '--user', 'nobody-known', '--expires', '1d'])
  t.equal(await through(gateA, optional.token), 200, 'optional: a user without a record is fine')
})

t.test('the admin API manages users as the CLI does, audited as admin-api', async (t) => {
  const created = await api('POST', '/users', {
    id: 'api-dan',
    name: 'Dan',
    email: 'dan@example.org',
    attrs: { department: 'radiology' },
    validUntil: '2099-06-01',
  })
  t.equal(created.status, 201, created.text)
  t.equal(created.headers.location, '/users/api-dan')
  t.match(created.json(), { id: 'api-dan', status: 'active', validUntil: '2099-06-01T00:00:00.000Z' })
  t.match((await api('GET', '/users/api-dan')).json(), { name: 'Dan', attrs: { department: 'radiology' } })
  const all = (await api('GET', '/users')).json() as { users: { id: string }[] }
  t.ok(all.users.some((u) => u.id === 'api-dan'))
  const patched = await api('PATCH', '/users/api-dan', { attrs: { type: 'viewer' }, validUntil: null })
  t.match(patched.json(), { attrs: { department: 'radiology', type: 'viewer' }, validUntil: null })

  const token = await api('POST', '/tokens', { kind: 'user', user: 'api-dan', expiresIn: '1h' })
  t.equal(token.status, 201)
  const made = token.json() as { token: string; attrs: Record<string, string> }
  t.same(made.attrs, { department: 'radiology', type: 'viewer' })
  const secret = made.token
  t.equal(await through(gateB, secret), 200)
  t.match((await api('POST', '/users/api-dan/deactivate')).json(), { status: 'deactivated' })
  t.ok((await eventuallyStatus(gateB, secret, 401)) === 401)
  const refusedCreate = await api('POST', '/tokens', { kind: 'user', user: 'api-dan', expiresIn: '1h' })
  t.match([refusedCreate.status, refusedCreate.json()], [400, { field: 'user', reason: /deactivated/ }])
  t.match((await api('POST', '/users/api-dan/activate')).json(), { status: 'active' })

  for (const [method, path, body, status, field] of [
    ['POST', '/users', { name: 'no id' }, 400, 'id'],
    ['POST', '/users', { id: 'x\ny' }, 400, 'id'],
    ['POST', '/users', { id: 'api-dan' }, 400, 'id'],
    ['POST', '/users', { id: 'z', attrs: { department: 5 } }, 400, 'attrs'],
    ['POST', '/users', { id: 'z', role: 'admin' }, 400, 'role'],
    ['PATCH', '/users/nobody', { name: 'N' }, 404, 'user'],
    ['GET', '/users/nobody', undefined, 404, 'user'],
  ] as [string, string, unknown, number, string][]) {
    const res = await api(method, path, body)
    t.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)}`)
    t.equal((res.json() as { field?: string }).field, field)
  }
  const audited = ((await api('GET', '/audit?limit=1000')).json() as { events: AuditEvent[] }).events
  t.same(
    audited.filter((e) => e.user === 'api-dan' && e.op.startsWith('user.')).map((e) => [e.op, e.actor]),
    [
      ['user.add', 'admin-api'],
      ['user.set', 'admin-api'],
      ['user.deactivate', 'admin-api'],
      ['user.activate', 'admin-api'],
    ],
  )
})
