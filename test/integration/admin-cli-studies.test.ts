// The study-set CLI (`album add-study|remove-study|studies|import`, `inbox …`; admin/study-commands.ts
// → admin/studies.ts) against a real redis-server: what it stores (DESIGN §3), what it publishes on
// the invalidation channel, what it prints, and how it refuses malformed UIDs before writing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { type CliRun, runCliCaptured } from '../helpers/cli.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
t.teardown(redis.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-study-cli-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = join(dir, 'tokengate.yaml')
await writeFile(
  config,
  `redis: { url: "${redis.url}" }\nscoping: studies\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n`,
)

function cli(args: string[]): Promise<CliRun> {
  return runCliCaptured([...args, '--config', config])
}

/** The invalidation messages published while `fn` runs. */
async function published(fn: () => Promise<unknown>): Promise<string[]> {
  const sub = new Redis(redis.url)
  sub.on('error', () => {})
  const messages: string[] = []
  sub.on('message', (_c: string, m: string) => messages.push(m))
  await sub.subscribe('tg:events')
  await fn()
  // A PING on the subscriber connection is answered after every message published before it.
  await sub.ping()
  sub.disconnect()
  return messages
}

t.test('album add-study stores the UIDs, publishes album:<id> and says what changed', async (t) => {
  let res = { code: -1, stdout: '', stderr: '' }
  const messages = await published(async () => {
    res = await cli(['album', 'add-study', 'A', '1.2.3', '1.2.4', '1.2.3'])
  })
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /added 2 of 2 studies \(0 already there\); album A now holds 2/)
  t.same((await redis.client.smembers('tg:album:A:studies')).sort(), ['1.2.3', '1.2.4'])
  t.same(messages, ['album:A'])
  const again = await published(async () => {
    res = await cli(['album', 'add-study', 'A', '1.2.3', '--json'])
  })
  t.same(JSON.parse(res.stdout), { set: 'album:A', given: 1, changed: 0, size: 2 })
  t.same(again, [], 'nothing changed: nothing published')
})

t.test("inbox add-study writes the user's inbox set and publishes user:<id>", async (t) => {
  let res = { code: -1, stdout: '', stderr: '' }
  const messages = await published(async () => {
    res = await cli(['inbox', 'add-study', 'alice', '2.25.1'])
  })
  t.equal(res.code, 0, res.stderr)
  t.same(await redis.client.smembers('tg:user:alice:inbox'), ['2.25.1'])
  t.same(messages, ['user:alice'])
  t.match(res.stdout, /alice's inbox now holds 1/)
})

t.test('remove-study removes, and studies lists what is left (text and JSON)', async (t) => {
  const rm1 = await cli(['album', 'remove-study', 'A', '1.2.4', '9.9'])
  t.equal(rm1.code, 0)
  t.match(rm1.stdout, /removed 1 of 2 studies \(1 not there\)/)
  t.equal((await cli(['album', 'studies', 'A'])).stdout, '1.2.3\n')
  t.same(JSON.parse((await cli(['album', 'studies', 'A', '--json'])).stdout), {
    items: ['1.2.3'],
    nextCursor: null,
  })
  t.match((await cli(['album', 'studies', 'empty'])).stdout, /no studies in album empty/)
})

t.test('import reads one UID a line, skipping blank lines and comments', async (t) => {
  const file = join(dir, 'uids.txt')
  await writeFile(file, '# exported from the RIS\n1.2.840.1\n\n  1.2.840.2  \r\n1.2.840.1\n')
  const res = await cli(['album', 'import', 'B', file, '--json'])
  t.equal(res.code, 0, res.stderr)
  t.same(JSON.parse(res.stdout), { set: 'album:B', given: 2, changed: 2, size: 2 })
})

t.test('import reads a QIDO-RS DICOM JSON result, and 10,000 UIDs go in batches', async (t) => {
  const file = join(dir, 'qido.json')
  const results = Array.from({ length: 10_000 }, (_, i) => ({
    '0020000D': { vr: 'UI', Value: [`1.2.826.0.1.${i + 1}`] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'DOE^JANE' }] },
  }))
  await writeFile(file, JSON.stringify(results))
  const res = await cli(['inbox', 'import', 'bob', file])
  t.equal(res.code, 0, res.stderr)
  t.equal(await redis.client.scard('tg:user:bob:inbox'), 10_000)
  t.match(res.stdout, /added 10000 of 10000 studies/)
})

t.test('a malformed UID is refused with exit 2, naming where it is, and nothing is written', async (t) => {
  const arg = await cli(['album', 'add-study', 'C', '1.2.3', '1.2.x'])
  t.equal(arg.code, 2)
  t.match(arg.stderr, /not a StudyInstanceUID .*argument 3: "1\.2\.x"/)
  const file = join(dir, 'bad.txt')
  await writeFile(file, '1.2.3\n1.2.3;DROP\n')
  const imp = await cli(['album', 'import', 'C', file])
  t.equal(imp.code, 2)
  t.match(imp.stderr, /line 2: "1\.2\.3;DROP"/)
  t.equal(await redis.client.exists('tg:album:C:studies'), 0)
  const name = await cli(['album', 'add-study', 'bad:name', '1.2'])
  t.equal(name.code, 2)
  t.match(name.stderr, /contains ':'/)
})

t.test('inbox --help lists its commands; a missing UID is a usage error', async (t) => {
  const help = await cli(['inbox', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /add-study USER UID…/)
  t.match(help.stdout, /import USER FILE/)
  const missing = await cli(['inbox', 'add-study', 'alice'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /missing argument/)
})
