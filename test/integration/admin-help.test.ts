// Help and the admin API's description (issue 14.7): every command and subcommand answers --help
// with exit 0, a usage line, its options and an example (`tokengate serve --help` included, run as
// the built binary); `GET /openapi.json` on the admin listener is an OpenAPI 3.1 description that
// lists exactly the routes, methods and query parameters of the route table.
import t from 'tap'
import { ROUTES } from '../../src/admin/api-routes.js'
import type { CommandHelp } from '../../src/admin/cli-command.js'
import { ALBUM_STUDY_COMMANDS, INBOX_COMMANDS } from '../../src/admin/study-commands.js'
import { AUDIT, COMMANDS, USER_ALBUMS } from '../../src/admin/token-commands.js'
import { USER_COMMANDS } from '../../src/admin/user-commands.js'
import { runCliCaptured } from '../helpers/cli.js'
import { startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { runTokengate } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'

const KEY = 'test-admin-key-0123456789abcdefghijklmnop'

t.test('serve, check-config and every group answer --help with exit 0 and an example', async (t) => {
  for (const args of [['serve', '--help'], ['check-config', '-h'], ['--help']]) {
    const res = await runTokengate(args)
    t.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`)
    t.match(res.stdout, /^usage: tokengate/, args.join(' '))
  }
  t.match((await runTokengate(['serve', '--help'])).stdout, /--config FILE[\s\S]*example: tokengate serve/)
  for (const group of ['token', 'user', 'album', 'inbox']) {
    const res = await runCliCaptured([group, '--help'])
    t.equal(res.code, 0, group)
    t.match(res.stdout, `usage: tokengate ${group}`)
  }
})

t.test(
  'every command in the tables answers --help with exit 0, its options with defaults and an example',
  async (t) => {
    const tables: [string, Record<string, CommandHelp>][] = [
      ...Object.entries(COMMANDS).map(([group, table]): [string, Record<string, CommandHelp>] => [
        group,
        table,
      ]),
      ['user', { ...USER_COMMANDS, albums: USER_ALBUMS }],
      ['album', ALBUM_STUDY_COMMANDS],
      ['inbox', INBOX_COMMANDS],
    ]
    const names: [string, string, CommandHelp][] = [['audit', '', AUDIT]]
    for (const [group, table] of tables)
      for (const [name, command] of Object.entries(table)) names.push([group, name, command])
    t.ok(names.length >= 29, `${names.length} commands`)
    for (const [group, name, command] of names) {
      const where = name ? `${group} ${name}` : group
      const res = await runCliCaptured(name ? [group, name, '--help'] : [group, '--help'])
      t.equal(res.code, 0, where)
      t.match(res.stdout, new RegExp(`^usage: tokengate ${where}`), `${where}: usage`)
      t.match(
        res.stdout,
        /\noptions every command takes:\n {2}-c, --config FILE .*\(default /,
        `${where}: options`,
      )
      t.match(
        res.stdout,
        new RegExp(`\\nexample: tokengate ${where}[ \\n]`),
        `${where}: an example of itself`,
      )
      for (const option of Object.keys(command.options))
        t.match(res.stdout, `--${option}`, `${where}: --${option} is listed`)
    }
    for (const [group, name] of [
      ['token', 'list'],
      ['album', 'members'],
      ['album', 'studies'],
      ['user', 'albums'],
      ['audit', ''],
    ] as const) {
      const res = await runCliCaptured(name ? [group, name, '--help'] : [group, '--help'])
      t.match(res.stdout, /--limit N .*\(default 100\)/, `${group} ${name}: the page size default`)
    }
  },
)

t.test('GET /openapi.json describes exactly the route table, as OpenAPI 3.1', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const gate = await startGate({
    redisUrl: redis.url,
    upstream: 'http://127.0.0.1:9/dicom-web',
    config: { admin: { port: 0, key: KEY } },
  })
  t.teardown(gate.stop)
  const res = await send(`http://127.0.0.1:${gate.app.adminAddress?.port}`, {
    method: 'GET',
    path: '/openapi.json',
    headers: bearer(KEY),
  })
  t.equal(res.status, 200, res.text)
  const doc = res.json() as {
    openapi: string
    paths: Record<string, Record<string, { parameters: { name: string; in: string }[] }>>
  }
  t.equal(doc.openapi, '3.1.0')
  const table = ROUTES.map((r) => r.pattern.replace(/:(\w+)/g, '{$1}')).sort()
  t.same(Object.keys(doc.paths).sort(), table, 'every route, and no other')
  for (const route of ROUTES) {
    const item = doc.paths[route.pattern.replace(/:(\w+)/g, '{$1}')] ?? {}
    t.same(
      Object.keys(item).sort(),
      Object.keys(route.methods)
        .map((m) => m.toLowerCase())
        .sort(),
      route.pattern,
    )
    for (const [method, endpoint] of Object.entries(route.methods)) {
      const query = (item[method.toLowerCase()]?.parameters ?? [])
        .filter((p) => p.in === 'query')
        .map((p) => p.name)
      t.same(query, [...(endpoint.query ?? [])], `${method} ${route.pattern} query`)
    }
  }
})
