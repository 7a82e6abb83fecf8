// Config loading: valid fixtures load; each invalid fixture fails with the message in its
// `.expected.txt` (one substring per line; a line starting with `!` must NOT appear); ${VAR}
// interpolation from the env passed in; every problem names its key and line.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadConfigFile, parseConfig } from '../../../src/config/load.js'
import { configSchema, DEFAULT_STRIP_HEADERS } from '../../../src/config/schema.js'
import { ConfigError } from '../../../src/errors.js'

const FIXTURES = fileURLToPath(new URL('../../fixtures/config/', import.meta.url))
const MOUNT = 'mounts:\n  - path: /api\n    upstream: http://127.0.0.1:8042/dicom-web\n'

/** The ConfigError a parse throws (or a failure when it does not). */
function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('the minimal config loads with every default filled in', async (t) => {
  const c = await loadConfigFile(join(FIXTURES, 'valid/minimal.yaml'), {})
  t.same(c.listen, {
    host: '127.0.0.1',
    port: 8080,
    headersTimeout: 20_000,
    requestTimeout: 0,
    idleTimeout: 120_000,
    keepAliveTimeout: 5_000,
    minUploadRate: 1024,
    uploadRateWindow: 30_000,
    http2: false,
  })
  t.same(c.redis, {
    url: 'redis://127.0.0.1:6379',
    keyPrefix: 'tg:',
    commandTimeout: 1000,
    connectTimeout: 2000,
  })
  t.equal(c.mounts.length, 1)
  t.equal(c.mounts[0]?.wadoNormalizeQuery, false)
  t.equal(c.mounts[0]?.rules, undefined, 'no rules: the DICOMweb defaults apply at compile time')
  t.equal(c.scoping, 'query')
  t.equal(c.workers, 1)
  t.same(c.cache, { max: 100_000, ttl: 30_000, negativeTtl: 5_000, staleIfError: 0, studyUids: 1_000_000 })
  t.same(c.forward, {
    connectTimeout: 5_000,
    headersTimeout: 60_000,
    idleTimeout: 60_000,
    keepAliveTimeout: 4_000,
    maxSockets: 256,
  })
  t.same(c.metrics, { enabled: true, host: '127.0.0.1', port: 9464 })
  t.same(c.shutdown, { deadline: 30_000 })
  t.equal(c.log.access, true)
  t.same(c.studies, { maxUrlLength: 8000, parallelSearches: 4 })
  t.equal(c.publicUrl, undefined)
  t.same(
    [c.mounts[0]?.zip, c.mounts[0]?.rewriteResponseUrls, c.mounts[0]?.upstreamAliases],
    [false, true, []],
  )
  t.same(c.identityHeaders, {
    user: 'X-Tokengate-User',
    tokenId: 'X-Tokengate-Token-Id',
    scope: 'X-Tokengate-Scope',
    strip: [],
    stripDefault: DEFAULT_STRIP_HEADERS,
  })
  t.same(c.trustedProxies, [], 'no trusted proxies unless configured')
  t.same(c.authLimiter, { enabled: true, maxFailures: 600, window: 60_000 }, 'the limiter is on by default')
  t.same(c.tokens, {
    prefix: 'tg_',
    allowLegacy: true,
    previousChecksumKeys: [],
    allowUnkeyed: true,
    expiredGrace: 7 * 86_400_000,
    maxLifetime: 365 * 86_400_000,
    lastUsedInterval: 60_000,
  })
  t.equal(c.admin, undefined, 'no admin API unless configured')
  t.same(c.audit, { maxLen: 100_000 })
  t.equal(c.log.level, 'info')
})

t.test('the full config loads every key, durations in milliseconds', async (t) => {
  const c = await loadConfigFile(join(FIXTURES, 'valid/full.yaml'), {})
  t.same(c.listen, {
    host: '0.0.0.0',
    port: 9090,
    headersTimeout: 5000,
    requestTimeout: 3_600_000,
    idleTimeout: 90_000,
    keepAliveTimeout: 2000,
    minUploadRate: 0,
    uploadRateWindow: 10_000,
    http2: false,
  })
  t.same(c.redis, {
    url: 'redis://:secret@redis.internal:6380/2',
    keyPrefix: 'gate:',
    commandTimeout: 250,
    connectTimeout: 3000,
  })
  t.equal(c.mounts[0]?.path, '/api', 'a trailing slash on a mount path is dropped')
  t.same(
    c.mounts[0]?.upstreamAuth,
    { basic: { user: 'tokengate', password: '123456' } },
    'quoted digits stay a string',
  )
  t.equal(c.mounts[0]?.wadoNormalizeQuery, true)
  t.same(
    c.mounts[0]?.cors,
    { origins: ['https://viewer.example.org', 'http://localhost:3000'], credentials: false, maxAge: 600 },
    'cors: origins as listed, credentials off by default',
  )
  t.equal(c.mounts[1]?.cors, undefined, 'no cors unless configured')
  t.same(c.mounts[1]?.rules, [
    { methods: ['GET', 'HEAD'], path: '/studies/**', action: 'read' },
    { methods: '*', path: '/**', action: 'write' },
  ])
  t.same(c.mounts[1]?.upstreamAuth, { header: { name: 'X-Api-Key', value: 'k' } })
  t.equal(c.scoping, 'studies')
  t.equal(c.workers, 'auto')
  t.same(c.cache, { max: 0, ttl: 60_000, negativeTtl: 1500, staleIfError: 300_000, studyUids: 5000 })
  t.same(c.studies, { maxUrlLength: 4000, parallelSearches: 8 })
  t.equal(c.publicUrl, 'https://pacs.example.org/gate')
  t.same(
    [c.mounts[0]?.rewriteResponseUrls, c.mounts[0]?.upstreamAliases],
    [false, ['http://pacs.internal/dicom-web']],
  )
  t.equal(c.mounts[1]?.zip, true)
  t.same(c.identityHeaders.strip, ['X-Forwarded-User'])
  t.same(c.identityHeaders.stripDefault, ['X-Real-IP'])
  t.same(c.trustedProxies, ['10.0.0.0/8', 'fd00::/8', '192.0.2.1'])
  t.same(c.authLimiter, { enabled: false, maxFailures: 50, window: 300_000 })
  t.same(c.forward, {
    connectTimeout: 2000,
    headersTimeout: 120_000,
    idleTimeout: 30_000,
    keepAliveTimeout: 1000,
    maxSockets: 16,
  })
  t.same(c.tokens, {
    prefix: 'acme_',
    allowLegacy: false,
    checksumKey: 'c'.repeat(32),
    previousChecksumKeys: ['p'.repeat(32)],
    allowUnkeyed: false,
    expiredGrace: 86_400_000,
    maxLifetime: 90 * 86_400_000,
    lastUsedInterval: 0,
  })
  t.same(c.admin, { host: '0.0.0.0', port: 9091, key: '0123456789abcdef0123456789abcdef' })
  t.same(c.audit, { maxLen: 5000 })
  t.equal(c.log.level, 'debug')
  t.equal(c.log.access, false)
  t.same(c.metrics, { enabled: false, host: '10.0.0.1', port: 9100 })
  t.same(c.shutdown, { deadline: 60_000 })
})

t.test('the documented sample config in config/tokengate.yaml loads', async (t) => {
  const c = await loadConfigFile(
    fileURLToPath(new URL('../../../config/tokengate.yaml', import.meta.url)),
    {},
  )
  t.equal(c.redis.url, 'redis://127.0.0.1:6379', '${TOKENGATE_REDIS_URL:-…} falls back to its default')
})

t.test(
  'a sentinel or cluster section is the topology: its nodes become host and port, url stays unset',
  async (t) => {
    const sentinel = parseConfig(
      `redis:\n  sentinel:\n    name: mymaster\n    nodes: ["10.0.0.1:26379", "[::1]:26380"]\n    password: p\n    sentinelPassword: sp\n${MOUNT}`,
      's.yaml',
      {},
    )
    t.same(sentinel.redis, {
      sentinel: {
        name: 'mymaster',
        nodes: [
          { host: '10.0.0.1', port: 26379 },
          { host: '::1', port: 26380 },
        ],
        password: 'p',
        sentinelPassword: 'sp',
      },
      keyPrefix: 'tg:',
      commandTimeout: 1000,
      connectTimeout: 2000,
    })
    t.notOk('url' in sentinel.redis, 'no default url beside a sentinel section')
    const cluster = parseConfig(
      `redis:\n  cluster:\n    nodes:\n      - redis-0.internal:7000\n      - redis-1.internal:7001\n${MOUNT}`,
      'c.yaml',
      {},
    )
    t.same(cluster.redis.cluster, {
      nodes: [
        { host: 'redis-0.internal', port: 7000 },
        { host: 'redis-1.internal', port: 7001 },
      ],
    })
    t.notOk('url' in cluster.redis, 'no default url beside a cluster section')
  },
)

t.test('an empty node list is refused with what to add', async (t) => {
  const err = problemsOf(() => parseConfig(`redis:\n  cluster:\n    nodes: []\n${MOUNT}`, 'c.yaml', {}))
  t.same(err.problems, ['c.yaml:3: redis.cluster.nodes: list at least one cluster node as "host:port"'])
})

const invalid = readdirSync(join(FIXTURES, 'invalid'))
  .filter((f) => f.endsWith('.yaml'))
  .sort()

t.test('every invalid fixture has its expected message file', async (t) => {
  t.ok(invalid.length >= 10, `${invalid.length} invalid fixtures`)
  const expected = readdirSync(join(FIXTURES, 'invalid')).filter((f) => f.endsWith('.expected.txt'))
  t.same(expected.map((f) => f.replace(/\.expected\.txt$/, '.yaml')).sort(), invalid)
})

for (const file of invalid) {
  t.test(`${file} is refused with its expected message, naming file, line and key`, async (t) => {
    const path = join(FIXTURES, 'invalid', file)
    const expected = readFileSync(path.replace(/\.yaml$/, '.expected.txt'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
    const err = await loadConfigFile(path, {}).then(
      () => t.fail('should not load'),
      (e: unknown) => e,
    )
    t.type(err, ConfigError)
    const message = (err as ConfigError).message
    for (const line of expected) {
      if (line.startsWith('!'))
        t.notMatch(message, line.slice(1), `does not say ${JSON.stringify(line.slice(1))}`)
      else t.match(message, `${path}${line}`, `says ${JSON.stringify(line)}`)
    }
    t.same((err as ConfigError).problems.join('\n'), message, 'problems are the message, one per line')
  })
}

t.test('every problem is reported, not only the first', async (t) => {
  const err = problemsOf(() =>
    parseConfig('listen:\n  port: x\ncache:\n  ttl: soon\n  maxx: 1\n', 'c.yaml', {}),
  )
  t.equal(err.problems.length, 4, err.message)
  t.match(err.message, 'c.yaml:2: listen.port:')
  t.match(err.message, 'c.yaml:4: cache.ttl: expected a duration')
  t.match(err.message, 'c.yaml:5: cache.maxx: unknown key')
  t.match(err.message, 'c.yaml:1: mounts: is required', 'a missing key is reported at its parent')
})

t.test('${VAR} and ${VAR:-default} are replaced from the env passed in', async (t) => {
  const text = `listen:
  host: \${HOST}
  port: \${PORT:-8181}
redis:
  url: redis://\${REDIS_HOST:-localhost}:\${REDIS_PORT:-6379}/0
mounts:
  - path: /api
    upstream: \${PACS_URL}
    upstreamAuth: { basic: { user: tg, password: "\${PACS_PASSWORD}" } }
`
  const env = {
    HOST: '0.0.0.0',
    PACS_URL: 'http://pacs:8042/dicom-web',
    PACS_PASSWORD: '007',
    REDIS_PORT: '6400',
  }
  const c = parseConfig(text, 't.yaml', env)
  t.equal(c.listen.host, '0.0.0.0')
  t.equal(c.listen.port, 8181, 'a default number becomes a number')
  t.equal(c.redis.url, 'redis://localhost:6400/0', 'several references in one value')
  t.equal(c.mounts[0]?.upstream, 'http://pacs:8042/dicom-web')
  t.same(
    c.mounts[0]?.upstreamAuth,
    { basic: { user: 'tg', password: '007' } },
    'a quoted value stays a string',
  )

  const set = parseConfig(text, 't.yaml', { ...env, PORT: '9000' })
  t.equal(set.listen.port, 9000, 'a set variable wins over the default')
  t.equal(
    parseConfig(text, 't.yaml', { ...env, PORT: '' }).listen.port,
    8181,
    'an empty variable takes the default',
  )
})

t.test('interpolation reads only the env passed in, never process.env', async (t) => {
  process.env.TOKENGATE_TEST_ONLY_IN_PROCESS = 'http://leak/'
  t.teardown(() => {
    delete process.env.TOKENGATE_TEST_ONLY_IN_PROCESS
  })
  const err = problemsOf(() =>
    parseConfig('mounts:\n  - path: /api\n    upstream: ${TOKENGATE_TEST_ONLY_IN_PROCESS}\n', 'e.yaml', {}),
  )
  t.match(err.message, 'TOKENGATE_TEST_ONLY_IN_PROCESS is not set')
})

t.test('a missing variable without default is named with its key and line', async (t) => {
  const text = `${MOUNT}redis:\n  keyPrefix: "tg:"\n  url: \${REDIS_URL}\n`
  const err = problemsOf(() => parseConfig(text, 'm.yaml', {}))
  t.same(err.problems, ['m.yaml:6: redis.url: environment variable REDIS_URL is not set'])
  const empty = problemsOf(() => parseConfig(text, 'm.yaml', { REDIS_URL: '' }))
  t.match(empty.message, 'REDIS_URL is not set', 'an empty variable counts as not set')
  t.equal(parseConfig(text, 'm.yaml', { REDIS_URL: 'redis://r:1' }).redis.url, 'redis://r:1')
})

t.test('a value that is not a ${NAME} reference is left alone', async (t) => {
  const c = parseConfig(`${MOUNT}redis:\n  url: redis://h:1/$\{not a ref}/$\{1X}\n`, 'v.yaml', {})
  t.equal(c.redis.url, 'redis://h:1/${not a ref}/${1X}')
})

t.test('an unknown key is named with its path and its own line', async (t) => {
  const cases: [string, string][] = [
    [`${MOUNT}cache:\n  tll: 30s\n`, 'u.yaml:5: cache.tll: unknown key'],
    [`${MOUNT}caches:\n  ttl: 30s\n`, 'u.yaml:4: caches: unknown key'],
    [`${MOUNT}colour: blue\n`, 'u.yaml:4: colour: unknown key'],
    [`${MOUNT}    wadoo: http://x/\n`, 'u.yaml:4: mounts[0].wadoo: unknown key'],
  ]
  for (const [text, want] of cases)
    t.match(problemsOf(() => parseConfig(text, 'u.yaml', {})).message, want, want)
})

t.test('a YAML syntax error gives its line', async (t) => {
  const err = problemsOf(() => parseConfig(`${MOUNT}cache: [1, 2\nlog:\n  level: info\n`, 's.yaml', {}))
  t.match(err.message, /^s\.yaml:\d+: YAML: /)
  const tab = problemsOf(() => parseConfig(`${MOUNT}cache:\n\tttl: 1s\n`, 's.yaml', {}))
  t.match(tab.message, /^s\.yaml:5: YAML: /, 'a tab indent on line 5')
})

t.test('a wrong type says what was expected, and only a missing key says "is required"', async (t) => {
  const wrong = problemsOf(() => parseConfig(`${MOUNT}cache:\n  max: lots\n`, 'w.yaml', {}))
  t.match(wrong.message, 'w.yaml:5: cache.max: Invalid input: expected number, received string')
  t.notMatch(wrong.message, 'is required')
  const missing = problemsOf(() => parseConfig('mounts:\n  - path: /api\n', 'w.yaml', {}))
  t.match(missing.message, 'w.yaml:2: mounts[0].upstream: is required')
})

t.test('an empty file is reported as missing mounts, not a crash', async (t) => {
  for (const text of ['', '# only a comment\n']) {
    t.match(problemsOf(() => parseConfig(text, 'e.yaml', {})).message, 'e.yaml: mounts: is required')
  }
})

t.test('an unreadable file is a ConfigError naming the path and the errno code', async (t) => {
  const path = join(FIXTURES, 'does-not-exist.yaml')
  await t.rejects(loadConfigFile(path, {}), {
    name: 'ConfigError',
    message: `${path}: cannot read the config file (ENOENT)`,
  })
})

/** Every key path the schema knows (objects and arrays of objects; unions are leaves). */
function schemaKeys(schema: unknown, prefix = ''): string[] {
  // biome-ignore lint/suspicious/noExplicitAny: walking zod's internal definition tree
  let def = (schema as any)._zod.def
  while (['default', 'prefault', 'optional', 'nullable', 'pipe'].includes(def.type)) {
    def = (def.innerType ?? def.in)._zod.def
  }
  if (def.type === 'array') return schemaKeys(def.element, `${prefix}[]`)
  if (def.type !== 'object') return []
  return Object.entries(def.shape as Record<string, unknown>).flatMap(([key, value]) => [
    `${prefix}${prefix ? '.' : ''}${key}`,
    ...schemaKeys(value, `${prefix}${prefix ? '.' : ''}${key}`),
  ])
}

t.test('config/tokengate.yaml documents every key of the schema', async (t) => {
  const sample = readFileSync(
    fileURLToPath(new URL('../../../config/tokengate.yaml', import.meta.url)),
    'utf8',
  )
  const keys = schemaKeys(configSchema)
  t.ok(keys.length > 30, `${keys.length} keys`)
  for (const path of keys) {
    const key = path
      .split(/[.[\]]+/)
      .filter(Boolean)
      .pop() as string
    t.match(sample, new RegExp(`(^|[\\s{,#])${key}:`, 'm'), `${path} is in the sample`)
  }
})
