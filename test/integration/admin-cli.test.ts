// The token CLI (admin/cli.ts → admin/tokens.ts) against a real redis-server: what `token …` and
// `album …` store (DESIGN §3), what they print (the secret once, never again), what they publish
// on the invalidation channel, what they audit and what `audit` lists, and the exit codes and
// messages of usage, input and runtime errors.
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import type { AuditEvent } from '../../src/admin/audit.js'
import { type CliRun, runCliCaptured } from '../helpers/cli.js'
import { freePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { probeUntil } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-admin-cli-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

const GRACE = 3_600_000
const MOUNT = 'mounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n'
const config = join(dir, 'tokengate.yaml')
await writeFile(config, `redis: { url: "${redis.url}" }\ntokens: { expiredGrace: 1h }\n${MOUNT}`)

/** Run the CLI in-process with captured output; `--config` is added unless `bare`. */
function cli(args: string[], opts: { bare?: boolean } = {}): Promise<CliRun> {
  return runCliCaptured(opts.bare ? args : [...args, '--config', config])
}

async function createJson(args: string[]): Promise<{ id: string; token: string; expiresAt: string }> {
  const res = await cli(['token', 'create', ...args, '--json'])
  if (res.code !== 0) throw new Error(`create failed: ${res.stderr}`)
  return JSON.parse(res.stdout) as { id: string; token: string; expiresAt: string }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

/** Subscribe to tg:events with a second client; `next(n)` waits until n messages have arrived. */
async function listen(t: {
  teardown: (fn: () => void) => void
}): Promise<{ messages: string[]; next: (n: number) => Promise<string[]> }> {
  const sub = new Redis(redis.url)
  sub.on('error', () => {})
  t.teardown(() => sub.disconnect())
  const messages: string[] = []
  sub.on('message', (_channel: string, message: string) => messages.push(message))
  await sub.subscribe('tg:events')
  return {
    messages,
    next: (n) =>
      probeUntil(
        () => messages,
        (m) => m.length >= n,
        { intervalMs: 10 },
      ),
  }
}

/** Every key name and every value in Redis, as one string. */
async function everything(): Promise<string> {
  const c = redis.client
  const parts: string[] = []
  for (const key of await c.keys('*')) {
    parts.push(key)
    const type = await c.type(key)
    if (type === 'string') parts.push(String(await c.get(key)))
    else if (type === 'hash') parts.push(JSON.stringify(await c.hgetall(key)))
    else if (type === 'set') parts.push(...(await c.smembers(key)))
  }
  return parts.join('\n')
}

t.test(
  'token create --json stores only the hash of the tg_ secret, with the layout of DESIGN §3',
  async (t) => {
    const before = Date.now()
    const created = await createJson([
      '--kind',
      'album',
      '--album',
      'A1',
      '--perms',
      'read,download',
      '--expires',
      '30d',
      '--user',
      'owner',
      '--description',
      'viewer link',
    ])
    t.match(created, {
      id: /^tok_[A-Za-z0-9_-]{16}$/,
      token: /^tg_/,
      kind: 'album',
      album: 'A1',
      perms: ['read', 'download'],
    })
    const expiresAt = Date.parse(created.expiresAt)
    t.ok(
      expiresAt >= before + 30 * 86_400_000 && expiresAt <= Date.now() + 30 * 86_400_000,
      'expires in 30 days',
    )

    const hash = sha256(created.token)
    const record = await redis.client.hgetall(`tg:token:${hash}`)
    t.match(record, {
      id: created.id,
      kind: 'album',
      album: 'A1',
      user: 'owner',
      perms: 'read,download',
      expiresAt: String(expiresAt),
      enabled: '1',
      revokedAt: '0',
      description: 'viewer link',
    })
    t.equal(await redis.client.get(`tg:id:${created.id}`), hash, 'the public id points at the hash')
    t.equal(await redis.client.sismember('tg:tokens', created.id), 1)
    t.equal(await redis.client.sismember('tg:user:owner:tokens', created.id), 1)
    t.equal(await redis.client.sismember('tg:album:A1:tokens', created.id), 1)

    const all = await everything()
    t.notOk(all.includes(created.token), 'the secret is nowhere in Redis, neither in a key nor in a value')
    t.notOk(all.includes(created.token.slice(3, 20)), 'not even a part of it')
  },
)

t.test('the record and the id key expire from Redis the grace period after expiresAt', async (t) => {
  const created = await createJson(['--kind', 'user', '--user', 'ttl-user', '--expires', '2h'])
  const expected = Date.parse(created.expiresAt) + GRACE - Date.now()
  for (const key of [`tg:token:${sha256(created.token)}`, `tg:id:${created.id}`]) {
    const pttl = await redis.client.pttl(key)
    t.ok(Math.abs(pttl - expected) < 5000, `${key.slice(0, 9)}… PTTL ${pttl} ≈ ${expected}`)
  }
})

t.test(
  'token create without --json prints the secret once, with a warning, the id and the expiry',
  async (t) => {
    const res = await cli(['token', 'create', '--kind', 'user', '--user', 'alice', '--expires', '2027-01-31'])
    t.equal(res.code, 0, res.stderr)
    t.match(res.stdout, /will not be shown again/)
    const token = /token\s+(tg_\S+)/.exec(res.stdout)?.[1] ?? ''
    t.equal(res.stdout.split(token).length, 2, 'the secret appears exactly once')
    t.match(res.stdout, /id\s+tok_\S{16}/)
    t.match(res.stdout, /expires\s+2027-01-31T00:00:00\.000Z/)
    t.match(res.stdout, /perms\s+read,write,download,appropriate/, 'a user token has every permission')
    t.equal(res.stderr, '')
  },
)

// Each row: what is wrong, the arguments after `token create`, what stderr must say.
const createRefusals: [string, string[], RegExp][] = [
  [
    'a missing expiry',
    ['--kind', 'album', '--album', 'A1', '--perms', 'read'],
    /expiry is mandatory.*--expires/,
  ],
  [
    'an expiry in the past',
    ['--kind', 'album', '--album', 'A1', '--perms', 'read', '--expires', '2020-01-01'],
    /not in the future/,
  ],
  [
    'an unknown permission',
    ['--kind', 'album', '--album', 'A1', '--perms', 'read,admin', '--expires', '1d'],
    /unknown permission "admin"/,
  ],
  ['no permission', ['--kind', 'album', '--album', 'A1', '--expires', '1d'], /at least one permission/],
  [
    'an album token without --album',
    ['--kind', 'album', '--perms', 'read', '--expires', '1d'],
    /add --album/,
  ],
  [
    'a user token with --perms',
    ['--kind', 'user', '--user', 'u', '--perms', 'read', '--expires', '1d'],
    /drop --perms/,
  ],
  ['a colon in the user', ['--kind', 'user', '--user', 'org:u', '--expires', '1d'], /contains ':'/],
  [
    'a newline in the album',
    ['--kind', 'album', '--album', 'A\n1', '--perms', 'read', '--expires', '1d'],
    /contains character U\+000a/,
  ],
  [
    'an expiry past tokens.maxLifetime (365d by default)',
    ['--kind', 'user', '--user', 'u', '--expires', '400d'],
    /more than 365d.*tokens\.maxLifetime/,
  ],
  [
    'an unknown flag',
    ['--kind', 'user', '--user', 'u', '--expires', '1d', '--frobnicate'],
    /Unknown option '--frobnicate'/,
  ],
  ['a flag without its value', ['--kind', 'user', '--expires', '1d', '--user'], /--user/],
  [
    'a stray argument',
    ['extra', '--kind', 'user', '--user', 'u', '--expires', '1d'],
    /unexpected argument "extra"/,
  ],
]

for (const [what, args, message] of createRefusals) {
  t.test(`token create with ${what} exits 2 with one clear line and stores nothing`, async (t) => {
    const keys = await redis.client.dbsize()
    const res = await cli(['token', 'create', ...args])
    t.equal(res.code, 2)
    t.match(res.stderr, message)
    t.match(res.stderr, /^tokengate token create: .*\(see `tokengate token create --help`\)\n$/)
    t.equal(res.stdout, '')
    t.equal(await redis.client.dbsize(), keys, 'nothing was written')
  })
}

t.test('show and list never print the secret nor its hash, in text or JSON', async (t) => {
  const created = await createJson([
    '--kind',
    'album',
    '--album',
    'SHOW',
    '--perms',
    'read',
    '--expires',
    '1d',
  ])
  const hash = sha256(created.token)
  for (const args of [
    ['token', 'show', created.id],
    ['token', 'show', created.id, '--json'],
    ['token', 'list'],
    ['token', 'list', '--json'],
    ['token', 'list', '--album', 'SHOW'],
  ]) {
    const res = await cli(args)
    t.equal(res.code, 0, res.stderr)
    t.match(res.stdout, created.id, `${args.join(' ')} shows the token`)
    t.notOk(
      res.stdout.includes(created.token) || res.stdout.includes(hash),
      `${args.join(' ')} hides secret and hash`,
    )
  }
  const shown = JSON.parse((await cli(['token', 'show', created.id, '--json'])).stdout)
  t.match(shown, {
    id: created.id,
    kind: 'album',
    album: 'SHOW',
    perms: ['read'],
    status: 'active',
    revokedAt: null,
  })
})

t.test('token list prints an aligned table and filters by user and album', async (t) => {
  const a = await createJson([
    '--kind',
    'album',
    '--album',
    'LIST-A',
    '--perms',
    'read',
    '--expires',
    '1d',
    '--user',
    'lister',
  ])
  const b = await createJson([
    '--kind',
    'album',
    '--album',
    'LIST-B',
    '--perms',
    'write',
    '--expires',
    '1d',
    '--user',
    'lister',
  ])
  const c = await createJson(['--kind', 'album', '--album', 'LIST-A', '--perms', 'read', '--expires', '1d'])

  const text = (await cli(['token', 'list', '--user', 'lister'])).stdout.trimEnd().split('\n')
  t.match(text[0], /^ID\s+KIND\s+STATUS\s+USER\s+ALBUM\s+CREATED\s+EXPIRES\s+LAST USED$/)
  t.equal(text.length, 3, "header and the user's two tokens")
  const column = (text[0] as string).indexOf('ALBUM')
  for (const row of text.slice(1)) t.match(row.slice(column), /^LIST-[AB] /, 'the album column lines up')

  const ids = async (args: string[]) =>
    (
      JSON.parse((await cli(['token', 'list', ...args, '--json'])).stdout) as { items: { id: string }[] }
    ).items
      .map((x) => x.id)
      .sort()
  t.same(await ids(['--user', 'lister']), [a.id, b.id].sort())
  t.same(await ids(['--album', 'LIST-A']), [a.id, c.id].sort())
  t.same(await ids(['--user', 'lister', '--album', 'LIST-A']), [a.id])
  t.same(await ids(['--user', 'nobody']), [])
  t.equal((await cli(['token', 'list', '--user', 'nobody'])).stdout, 'no tokens\n')
})

t.test('list skips tokens whose record has left Redis; prune-index forgets them', async (t) => {
  const gone = await createJson(['--kind', 'album', '--album', 'GONE', '--perms', 'read', '--expires', '1d'])
  await redis.client.del(`tg:token:${sha256(gone.token)}`, `tg:id:${gone.id}`)
  const listed = JSON.parse((await cli(['token', 'list', '--album', 'GONE', '--json'])).stdout)
  t.same(listed, { items: [], nextCursor: null })
  t.equal(await redis.client.sismember('tg:album:GONE:tokens', gone.id), 1, 'list removes nothing')
  const pruned = await cli(['token', 'prune-index', '--json'])
  t.equal(pruned.code, 0, pruned.stderr)
  t.ok(JSON.parse(pruned.stdout).removed >= 1)
  t.equal(await redis.client.sismember('tg:album:GONE:tokens', gone.id), 0)
  t.equal(await redis.client.sismember('tg:tokens', gone.id), 0)
  t.equal(await redis.client.zscore('tg:tokens:by-created', gone.id), null, 'and from the sorted indexes')
  t.equal(await redis.client.zscore('tg:tokens:by-expires', gone.id), null)
})

t.test(
  'token revoke publishes the token hash on tg:events, and a revoked token cannot be enabled',
  async (t) => {
    const created = await createJson([
      '--kind',
      'album',
      '--album',
      'REV',
      '--perms',
      'read',
      '--expires',
      '1d',
    ])
    const events = await listen(t)
    const res = await cli(['token', 'revoke', created.id])
    t.equal(res.code, 0, res.stderr)
    t.equal(res.stdout, `revoked ${created.id}\n`)
    t.same(await events.next(1), [sha256(created.token)], 'the message is the sha256 hex of the secret')
    t.ok(Number(await redis.client.hget(`tg:token:${sha256(created.token)}`, 'revokedAt')) > 0)
    t.match(JSON.parse((await cli(['token', 'show', created.id, '--json'])).stdout), { status: 'revoked' })

    const again = await cli(['token', 'enable', created.id])
    t.equal(again.code, 2)
    t.match(again.stderr, /revocation is permanent, create a new token instead/)
    t.notMatch(again.stderr, /--help/, 'a refusal by the store is no command-line mistake: no --help hint')
    t.equal((await redis.client.hget(`tg:token:${sha256(created.token)}`, 'revokedAt')) !== '0', true)
  },
)

t.test('token revoke --user revokes every token of that user and nobody else', async (t) => {
  const mine = [
    await createJson(['--kind', 'user', '--user', 'bob', '--expires', '1d']),
    await createJson(['--kind', 'user', '--user', 'bob', '--expires', '1d']),
    await createJson([
      '--kind',
      'album',
      '--album',
      'B',
      '--perms',
      'read',
      '--user',
      'bob',
      '--expires',
      '1d',
    ]),
  ]
  const other = await createJson(['--kind', 'user', '--user', 'carol', '--expires', '1d'])
  const events = await listen(t)
  const res = await cli(['token', 'revoke', '--user', 'bob'])
  t.equal(res.code, 0, res.stderr)
  t.equal(res.stdout, 'revoked 3 tokens of user bob\n')
  const messages = await events.next(4)
  t.same([...messages].sort(), [...mine.map((m) => sha256(m.token)), 'user:bob'].sort())
  for (const m of mine)
    t.match(JSON.parse((await cli(['token', 'show', m.id, '--json'])).stdout), { status: 'revoked' })
  t.match(JSON.parse((await cli(['token', 'show', other.id, '--json'])).stdout), { status: 'active' })
  t.equal(
    (await cli(['token', 'revoke', '--user', 'bob'])).stdout,
    'revoked 0 tokens of user bob\n',
    'twice is harmless',
  )
})

t.test('token revoke needs exactly one of an id and --user', async (t) => {
  t.match(await cli(['token', 'revoke']), {
    code: 2,
    stderr: /give the token IDs to revoke, --user ID, or --filter/,
  })
  t.match(await cli(['token', 'revoke', 'tok_x', '--user', 'bob']), { code: 2, stderr: /not both/ })
})

t.test('token disable and enable flip the record and publish each change', async (t) => {
  const created = await createJson([
    '--kind',
    'album',
    '--album',
    'DIS',
    '--perms',
    'read',
    '--expires',
    '1d',
  ])
  const key = `tg:token:${sha256(created.token)}`
  const events = await listen(t)
  t.match(await cli(['token', 'disable', created.id]), { code: 0, stdout: `disabled ${created.id}\n` })
  t.equal(await redis.client.hget(key, 'enabled'), '0')
  t.match(JSON.parse((await cli(['token', 'show', created.id, '--json'])).stdout), {
    status: 'disabled',
    enabled: false,
  })
  t.match(await cli(['token', 'enable', created.id]), { code: 0, stdout: `enabled ${created.id}\n` })
  t.equal(await redis.client.hget(key, 'enabled'), '1')
  t.same(await events.next(2), [sha256(created.token), sha256(created.token)])
})

t.test('an unknown token id exits 2 and says so', async (t) => {
  for (const command of ['show', 'revoke', 'disable', 'enable']) {
    const res = await cli(['token', command, 'tok_doesnotexist00'])
    t.equal(res.code, 2, command)
    t.match(
      res.stderr,
      command === 'show' ? /no token with that id/ : /no token with id "tok_doesnotexist00"/,
    )
  }
})

t.test('album add-member and remove-member change the membership set and publish user:<id>', async (t) => {
  const events = await listen(t)
  t.match(await cli(['album', 'add-member', 'A1', 'alice']), {
    code: 0,
    stdout: 'alice is now a member of album A1\n',
  })
  t.equal(await redis.client.sismember('tg:user:alice:albums', 'A1'), 1)
  t.match(await cli(['album', 'add-member', 'A1', 'alice']), { code: 0, stdout: /already a member/ })
  t.match(await cli(['album', 'remove-member', 'A1', 'alice', '--json']), { code: 0 })
  t.equal(await redis.client.sismember('tg:user:alice:albums', 'A1'), 0)
  t.same(await events.next(2), ['user:alice', 'user:alice'], 'published on change only')
  t.match(await cli(['album', 'add-member', 'A1']), {
    code: 2,
    stderr: 'missing argument; usage: tokengate album add-member ALBUM USER [--json]\n',
  })
})

t.test('--help describes each command and needs no config', async (t) => {
  for (const args of [
    ['token', '--help'],
    ['album', '--help'],
    ['token', 'create', '--help'],
    ['token', 'list', '-h'],
  ]) {
    const res = await cli(args, { bare: true })
    t.equal(res.code, 0, args.join(' '))
    t.match(res.stdout, /^usage: tokengate (token|album)/)
  }
  t.match((await cli(['token', 'create', '--help'], { bare: true })).stdout, /--expires WHEN.*\n.*2027-01-31/)
  t.match(await cli(['token'], { bare: true }), { code: 2, stderr: /usage: tokengate token/ })
  t.match(await cli(['token', 'frob'], { bare: true }), { code: 2, stderr: /unknown command "token frob"/ })
})

t.test('the config file comes from --config, else TOKENGATE_CONFIG, and a bad one exits 2', async (t) => {
  const saved = process.env.TOKENGATE_CONFIG
  t.teardown(() => {
    if (saved === undefined) delete process.env.TOKENGATE_CONFIG
    else process.env.TOKENGATE_CONFIG = saved
  })
  process.env.TOKENGATE_CONFIG = config
  t.match(await cli(['token', 'list'], { bare: true }), { code: 0 })
  const missing = await cli(['token', 'list', '--config', join(dir, 'nope.yaml')], { bare: true })
  t.equal(missing.code, 2)
  t.match(missing.stderr, /nope\.yaml: cannot read the config file \(ENOENT\)/)
  const bad = join(dir, 'bad.yaml')
  await writeFile(bad, `redis: { url: "${redis.url}" }\n`)
  t.match(await cli(['token', 'list', '--config', bad], { bare: true }), { code: 2, stderr: /mounts/ })
})

t.test('an unreachable Redis exits 1 naming the URL (without its password) and redis.url', async (t) => {
  const port = await freePort()
  const down = join(dir, 'down.yaml')
  await writeFile(down, `redis: { url: "redis://:hunter2@127.0.0.1:${port}" }\n${MOUNT}`)
  const res = await cli(['token', 'list', '--config', down], { bare: true })
  t.equal(res.code, 1)
  t.match(res.stderr, `cannot reach Redis at redis://:<redacted>@127.0.0.1:${port}`)
  t.match(res.stderr, /ECONNREFUSED/)
  t.match(res.stderr, `check \`redis.url\` in ${down}`)
  t.notMatch(res.stderr, /hunter2/)
})

/** The audit entries written since `before` (an XLEN taken earlier), oldest first. */
async function auditedSince(before: number): Promise<AuditEvent[]> {
  const page = JSON.parse((await cli(['audit', '--limit', '10000', '--json'])).stdout) as {
    events: AuditEvent[]
  }
  return page.events.slice(before)
}

t.test('every change the CLI makes is audited as the OS user, --actor, or $TOKENGATE_ACTOR', async (t) => {
  const saved = process.env.TOKENGATE_ACTOR
  t.teardown(() => {
    if (saved === undefined) delete process.env.TOKENGATE_ACTOR
    else process.env.TOKENGATE_ACTOR = saved
  })
  delete process.env.TOKENGATE_ACTOR
  const before = await redis.client.xlen('tg:audit')
  const created = await createJson([
    '--kind',
    'album',
    '--album',
    'AUD',
    '--perms',
    'read',
    '--expires',
    '1d',
  ])
  t.equal((await cli(['token', 'disable', created.id, '--actor', 'ops-jane'])).code, 0)
  process.env.TOKENGATE_ACTOR = 'deploy-bot'
  t.equal((await cli(['token', 'enable', created.id])).code, 0)
  t.equal(
    (await cli(['token', 'revoke', created.id, '--actor', 'ops-jane'])).code,
    0,
    '--actor wins over the env',
  )
  t.equal((await cli(['album', 'add-member', 'AUD', 'aud-kim'])).code, 0)
  t.equal((await cli(['token', 'revoke', '--user', 'aud-kim'])).code, 0)

  const events = await auditedSince(before)
  t.match(events, [
    { op: 'token.create', actor: userInfo().username, tokenId: created.id, album: 'AUD', perms: ['read'] },
    { op: 'token.disable', actor: 'ops-jane', tokenId: created.id, changed: true },
    { op: 'token.enable', actor: 'deploy-bot', tokenId: created.id, changed: true },
    { op: 'token.revoke', actor: 'ops-jane', tokenId: created.id, changed: true },
    { op: 'album.add-member', actor: 'deploy-bot', album: 'AUD', user: 'aud-kim', changed: true },
    { op: 'token.revoke-user', actor: 'deploy-bot', user: 'aud-kim', count: 0 },
  ])
  t.equal(events.length, 6)
  for (const e of events) t.equal(e.client, undefined, `${e.op}: no client address from the CLI`)
  const raw = JSON.stringify(await redis.client.xrange('tg:audit', '-', '+'))
  t.notOk(raw.includes(created.token), 'no secret in the stream')
  t.notOk(raw.includes(sha256(created.token)), 'no hash in the stream')
})

t.test('a refused or failed change writes no audit entry', async (t) => {
  const before = await redis.client.xlen('tg:audit')
  t.equal((await cli(['token', 'revoke', 'tok_doesnotexist00'])).code, 2)
  t.equal(
    (await cli(['token', 'create', '--kind', 'user', '--user', 'u', '--expires', '2020-01-01'])).code,
    2,
  )
  t.equal((await cli(['album', 'add-member', 'A:1', 'u'])).code, 2)
  t.match(await cli(['token', 'list', '--actor', '']), { code: 2, stderr: /the actor must not be empty/ })
  t.equal(await redis.client.xlen('tg:audit'), before)
})

t.test(
  'tokengate audit prints a table oldest first, --json an array, within --since and --limit',
  async (t) => {
    await cli(['album', 'add-member', 'TBL', 'tbl-1', '--actor', 'ops-jane'])
    await cli(['album', 'add-member', 'TBL', 'tbl-1', '--actor', 'ops-jane'])
    await cli(['album', 'remove-member', 'TBL', 'tbl-1', '--actor', 'ops-lee'])

    const text = await cli(['audit', '--limit', '3'])
    t.equal(text.code, 0, text.stderr)
    t.match(text.stdout, /\nnext page: --cursor \d+-\d+\n$/, 'older entries are a page away')
    const lines = text.stdout
      .trimEnd()
      .split('\n')
      .filter((l) => !l.startsWith('next page:'))
    t.match(lines[0], /^TIME\s+ACTOR\s+OPERATION\s+TOKEN\s+USER\s+ALBUM\s+DETAILS$/)
    t.equal(lines.length, 4, 'the header and the last three entries')
    t.match(lines[1], /^\d{4}-\d\d-\d\dT\S+Z\s+ops-jane\s+album\.add-member\s+-\s+tbl-1\s+TBL\s+-$/)
    t.match(lines[2], /ops-jane\s+album\.add-member\s+-\s+tbl-1\s+TBL\s+no change$/)
    t.match(lines[3], /ops-lee\s+album\.remove-member/, 'oldest first: the newest is last')

    const page = JSON.parse((await cli(['audit', '--since', '1h', '--limit', '2', '--json'])).stdout)
    t.same(Object.keys(page).sort(), ['events', 'nextCursor'], 'the page object GET /audit answers')
    t.type(page.nextCursor, 'string', 'more pages: a cursor')
    const json = page.events
    t.match(json, [
      { op: 'album.add-member', changed: false },
      { op: 'album.remove-member', actor: 'ops-lee' },
    ])
    t.match(json[0], { id: /^\d+-\d+$/, at: /^\d{4}-/ })
    t.same(JSON.parse((await cli(['audit', '--since', '2999-01-01T00:00:00Z', '--json'])).stdout), {
      events: [],
      nextCursor: null,
    })
    t.equal((await cli(['audit', '--since', '2999-01-01'])).stdout, 'no audit events\n')
    const all = JSON.parse(
      (await cli(['audit', '--since', '2000-01-01', '--limit', '10000', '--json'])).stdout,
    ).events
    t.equal(all.length, await redis.client.xlen('tg:audit'), '--since 2000-01-01 lists everything')
  },
)

t.test(
  'tokengate audit refuses a bad --since or --limit with exit 2, before reading the config',
  async (t) => {
    for (const [args, message] of [
      [['--since', 'yesterday'], /since "yesterday" is neither a duration like 1h or 7d nor an ISO date/],
      [['--since', '3600'], /since "3600" is neither/],
      [['--since', '2027-02-30'], /neither/],
      [['--limit', '0'], /limit must be a whole number from 1 to 10000, got "0"/],
      [['--limit', '1.5'], /limit must be a whole number/],
      [['extra'], /unexpected argument "extra"/],
    ] as const) {
      const res = await cli(['audit', ...args, '--config', join(dir, 'missing.yaml')], { bare: true })
      t.equal(res.code, 2, args.join(' '))
      t.match(res.stderr, message)
      t.match(res.stderr, /^tokengate audit: /)
    }
    t.match(await cli(['audit', '--help'], { bare: true }), { code: 0, stdout: /^usage: tokengate audit/ })
  },
)

t.test(
  'an unreachable Sentinel or Cluster exits 1 naming it (without passwords) and the key to check',
  async (t) => {
    const [a, b] = [await freePort(), await freePort()]
    const cases: [string, string, RegExp][] = [
      [
        `sentinel: { name: mymaster, nodes: ["127.0.0.1:${a}"], password: hunter2, sentinelPassword: hunter3 }`,
        'redis.sentinel',
        new RegExp(`cannot reach Redis at sentinel master "mymaster" via 127\\.0\\.0\\.1:${a} \\(`),
      ],
      [
        `cluster: { nodes: ["127.0.0.1:${a}", "127.0.0.1:${b}"], password: hunter2 }`,
        'redis.cluster',
        new RegExp(`cannot reach Redis at cluster 127\\.0\\.0\\.1:${a}, 127\\.0\\.0\\.1:${b} \\(`),
      ],
    ]
    for (const [section, key, says] of cases) {
      const down = join(dir, `down-${key}.yaml`)
      await writeFile(down, `redis: { ${section} }\n${MOUNT}`)
      const res = await cli(['token', 'list', '--config', down], { bare: true })
      t.equal(res.code, 1, key)
      t.match(res.stderr, says)
      t.match(res.stderr, `check \`${key}\` in ${down}`)
      t.notMatch(res.stderr, /hunter/)
    }
  },
)
