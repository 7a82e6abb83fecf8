// Packaging: docker-compose.yml and the Dockerfile. No Docker engine runs where tokengate is built,
// so this checks, without one, what `docker compose up` depends on: the three services, which
// ports are published and where, the mounted config through tokengate's own config loader (with
// the env compose passes), that it names the compose services it talks to, and that every path
// the Dockerfile copies or runs exists and is not excluded by .dockerignore.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { loadConfigFile } from '../../../src/config/load.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

interface ComposeService {
  image?: string
  build?: string
  command?: string[]
  environment?: Record<string, string>
  volumes?: string[]
  ports?: string[]
  depends_on?: string[]
}
const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { uniqueKeys: true }) as {
  services: Record<string, ComposeService>
  volumes: Record<string, unknown>
}
const services = compose.services
const gate = services['tokengate'] as ComposeService

/** Dockerfile instructions, continuation lines joined, comments dropped. */
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
const instructions = (name: string) =>
  dockerfile.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim())
const dockerEnv = Object.fromEntries(
  instructions('ENV').flatMap((l) => [...l.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]])),
)

/** `host:container` volume mounts of the tokengate service, as [source, target]. */
const mounts = (gate.volumes ?? []).map((v) => v.replace(/:ro$/, '').split(':') as [string, string])
const configMount = mounts.find(([, target]) => target === dockerEnv['TOKENGATE_CONFIG'])
const ADMIN_KEY = 'k'.repeat(64)

async function composeConfig() {
  if (!configMount) throw new Error('no mount at TOKENGATE_CONFIG')
  // The env compose gives the container: its `environment`, with ${VAR:?…} taken from the shell.
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(gate.environment ?? {})) {
    env[k] = v.replace(/\$\{(\w+)(?::\?[^}]*)?\}/g, (_m, name: string) =>
      name === 'TOKENGATE_ADMIN_KEY' ? ADMIN_KEY : '',
    )
  }
  return loadConfigFile(join(ROOT, configMount[0]), env)
}

t.test('compose brings up Redis, Orthanc and tokengate built from this repository', async (t) => {
  t.same(Object.keys(services).sort(), ['orthanc', 'redis', 'tokengate'])
  t.match(services['redis']?.image, /^redis:/)
  t.match(services['orthanc']?.image, /^orthancteam\/orthanc:/)
  t.equal(services['orthanc']?.environment?.['DICOM_WEB_PLUGIN_ENABLED'], 'true')
  t.equal(gate.build, '.')
  t.same([...(gate.depends_on ?? [])].sort(), ['orthanc', 'redis'])
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const source = v.split(':')[0] as string
      if (source.startsWith('.')) t.ok(existsSync(join(ROOT, source)), `${name}: ${source} exists`)
      else t.ok(source in (compose.volumes ?? {}), `${name}: volume ${source} is declared`)
    }
  }
})

t.test('only the API is published beyond the host; Redis and Orthanc are not published at all', async (t) => {
  t.equal(services['redis']?.ports, undefined)
  t.equal(services['orthanc']?.ports, undefined)
  const config = await composeConfig()
  const published = new Map(
    (gate.ports ?? []).map((p) => {
      const parts = p.split(':')
      return [Number(parts.at(-1)), parts.length === 3 ? parts[0] : '0.0.0.0'] as const
    }),
  )
  t.equal(published.get(config.listen.port), '0.0.0.0', 'the API port, to all')
  t.equal(published.get(config.metrics.port), '127.0.0.1', 'metrics and probes, to the host only')
  t.equal(published.get(config.admin?.port ?? -1), '127.0.0.1', 'the admin API, to the host only')
  t.equal(published.size, 3)
})

t.test(
  "the mounted config loads with tokengate's config loader and names the compose services",
  async (t) => {
    t.ok(configMount, 'docker/tokengate.yaml is mounted where the image reads its config')
    const config = await composeConfig()
    t.equal(config.admin?.key, ADMIN_KEY, 'the admin key comes from TOKENGATE_ADMIN_KEY')
    t.equal(config.listen.host, '0.0.0.0', 'reachable through the published port')
    t.equal(config.metrics.host, '0.0.0.0')
    t.equal(new URL(config.redis.url ?? '').hostname, 'redis')
    for (const m of config.mounts) {
      t.equal(new URL(m.upstream).hostname, 'orthanc', `${m.path} goes to the orthanc service`)
      if (m.wado) t.equal(new URL(m.wado).hostname, 'orthanc')
    }
    // Orthanc ignores album=/inbox=: with `scoping: query` an album token would see every study.
    t.equal(config.scoping, 'studies', 'Orthanc knows no albums: tokengate scopes by study sets')
  },
)

t.test("the Dockerfile's paths exist, survive .dockerignore, and match the config's ports", async (t) => {
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  const copies = instructions('COPY').filter((c) => !c.startsWith('--from='))
  t.ok(copies.length >= 5)
  for (const c of copies) {
    const sources = c.split(/\s+/).slice(0, -1)
    for (const s of sources) {
      t.ok(existsSync(join(ROOT, s)), `COPY ${s}: exists`)
      t.notOk(ignored.includes(s.replace(/\/$/, '')), `COPY ${s}: not in .dockerignore`)
    }
  }
  const entry = JSON.parse(instructions('ENTRYPOINT')[0] ?? '[]') as string[]
  t.ok(existsSync(join(ROOT, entry[1] ?? '')), `ENTRYPOINT ${entry.join(' ')}: the script exists`)
  t.match(instructions('USER').at(-1), /^(?!root$|0$)/, 'the image runs as a non-root user')

  // The image's own sample config, with the env the image sets, listens where it EXPOSEs.
  const sample = await loadConfigFile(join(ROOT, 'config/tokengate.yaml'), dockerEnv)
  t.same(
    instructions('EXPOSE')[0]?.split(/\s+/).map(Number),
    [sample.listen.port, sample.metrics.port],
    'EXPOSE = listen.port and metrics.port',
  )
  t.equal(sample.listen.host, '0.0.0.0')
  const health = new URL(dockerEnv['TOKENGATE_HEALTH_URL'] ?? '')
  t.equal(Number(health.port), sample.metrics.port, 'HEALTHCHECK asks the ops listener')
  t.equal(health.pathname, '/healthz')
  const composed = await composeConfig()
  t.equal(composed.metrics.port, Number(health.port), "the compose config's ops port is the HEALTHCHECK's")
})
