// `npm run bench:profile`: where tokengate's cache-hit path spends its CPU. Starts the upstream,
// Redis and tokengate (from dist/, under `node --cpu-prof`), primes the cache with the tokens,
// drives Bearer cache-hit load with autocannon, stops tokengate (the profile is written on exit),
// and prints the top functions by self time and the time per area (Node's http internals, undici,
// pino, lru-cache, tokengate's own code, GC).
// The .cpuprofile files stay in bench/results/profiles/ (open them in Chrome DevTools or speedscope).
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { admin as adminModule, keys as keysModule } from './lib/dist.js'
import { runLoad } from './lib/load.js'
import { LOAD_CORE, loadAverage, pinSelf, pinTo } from './lib/proc.js'
import { Stack } from './lib/stack.js'

const { values: a } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    tokens: { type: 'string', default: '2000' },
    top: { type: 'string', default: '25' },
  },
})
const seconds = Number(a.seconds)
const top = Number(a.top)

/**
 * @typedef {{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }} ProfileNode
 * @typedef {{ nodes: ProfileNode[], samples: number[], timeDeltas: number[] }} CpuProfile
 */

/**
 * @param {string} url
 * @param {string} name
 */
function area(url, name) {
  // fs.write's binding: only sonic-boom (pino's destination) writes files here, i.e. the access log.
  if (!url && name === 'writeString') return 'access log write (fs.write, native)'
  // Socket writes: on loopback the kernel's TCP work (both ends) is spent inside these calls.
  if (!url && /^write/.test(name)) return 'socket writes (native + kernel)'
  if (!url) return 'V8 / native'
  if (url.includes('/node_modules/undici/')) return 'undici'
  if (url.includes('/node_modules/http-proxy-3/')) return 'http-proxy-3'
  if (url.includes('/node_modules/pino') || url.includes('/node_modules/sonic-boom/'))
    return 'pino (access log)'
  if (url.includes('/node_modules/lru-cache/')) return 'lru-cache'
  if (url.includes('/node_modules/ioredis/')) return 'ioredis'
  if (url.includes('/node_modules/')) return 'other node_modules'
  if (url.includes('/dist/')) return `tokengate ${url.slice(url.indexOf('/dist/') + 6)}`
  if (url.startsWith('node:internal/http') || url.startsWith('node:_http') || url.startsWith('node:http'))
    return 'node:http'
  if (url.startsWith('node:internal/streams') || url.startsWith('node:stream')) return 'node:stream'
  if (url.startsWith('node:internal/crypto')) return 'node:crypto (sha256 of the secret)'
  if (url.startsWith('node:net') || url.startsWith('node:internal/stream_base')) return 'node:net'
  return 'node (other)'
}

/**
 * Self time per function and per area, in ms, idle excluded.
 * @param {CpuProfile} profile
 */
function selfTimes(profile) {
  /** @type {Map<number, ProfileNode>} */
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  /** @type {Map<string, number>} */
  const fns = new Map()
  /** @type {Map<string, number>} */
  const areas = new Map()
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(/** @type {number} */ (profile.samples[i]))
    const us = profile.timeDeltas[i] ?? 0
    if (!node || node.callFrame.functionName === '(idle)') continue
    const { functionName, url, lineNumber } = node.callFrame
    const short = url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'dist/')
    const key = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim()
    fns.set(key, (fns.get(key) ?? 0) + us)
    const where =
      functionName === '(garbage collector)'
        ? 'GC'
        : functionName === '(program)'
          ? 'V8 / native'
          : area(url, functionName)
    areas.set(where, (areas.get(where) ?? 0) + us)
    total += us
  }
  return { fns, areas, total }
}

/**
 * @param {Map<string, number>} m
 * @param {number} total
 * @param {number} n
 * @param {string} what
 */
function table(m, total, n, what) {
  const rows = [...m.entries()].sort((x, y) => y[1] - x[1]).slice(0, n)
  return [
    `| ${what} | self ms | share |`,
    '| --- | ---: | ---: |',
    ...rows.map(
      ([k, us]) =>
        `| \`${k.replaceAll('|', '\\|')}\` | ${(us / 1000).toFixed(0)} | ${((100 * us) / total).toFixed(1)}% |`,
    ),
  ].join('\n')
}

pinSelf()
const dir = await mkdtemp(join(tmpdir(), 'tokengate-profile-'))
const out = join(import.meta.dirname, 'results', 'profiles')
await mkdir(out, { recursive: true })
const stack = new Stack(dir)
try {
  const upstream = await stack.upstream()
  const redis = await stack.redis()
  // tokengate gets the server core to itself: the V8 profiler samples wall time, so a process
  // sharing its core would show the time it was preempted (e.g. by the upstream it just woke)
  // inside whatever it was doing, mostly socket writes.
  pinTo(upstream.pid, LOAD_CORE)
  pinTo(redis.pid, LOAD_CORE)
  const redisUrl = `redis://127.0.0.1:${redis.port}`
  const client = new Redis(redisUrl)
  const tokenAdmin = new adminModule.TokenAdmin(client, keysModule.makeKeys('tg:'), {
    secretPrefix: 'tg_',
    expiredGrace: 60_000,
  })
  const tokens = []
  for (let i = 0; i < Number(a.tokens); i += 250)
    tokens.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(250, Number(a.tokens) - i) }, () =>
          tokenAdmin.create({ kind: 'album', album: 'bench', perms: 'read', expiresIn: '1d' }),
        ),
      )),
    )
  client.disconnect()
  const specs = tokens.map((t) => ({
    path: '/api/studies?limit=10',
    headers: { authorization: `Bearer ${t.token}` },
  }))
  const gen = (/** @type {number} */ i) =>
    /** @type {import('./lib/load.js').RequestSpec} */ (specs[i % specs.length])
  const sections = [
    `Profile of the Bearer cache-hit path: ${seconds} s of autocannon -c 10 over ${tokens.length} tokens, node --cpu-prof, ${new Date().toISOString()}, load average ${loadAverage()}. tokengate alone on the server core; autocannon, the upstream and Redis on core ${LOAD_CORE}. Self time (wall-clock samples while not idle; the whole process lifetime, start-up and cache priming included).`,
  ]
  const profDir = join(dir, 'prof')
  const gate = await stack.tokengate('profile', {
    upstream: upstream.url,
    redisUrl,
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir],
  })
  const base = { url: gate.url, gen, pids: [gate.pid], connections: 10 }
  await runLoad({ ...base, amount: tokens.length })
  await runLoad({ ...base, seconds: 2 })
  const res = await runLoad({ ...base, seconds })
  await stack.stopOne(gate)
  const [file] = await readdir(profDir)
  if (!file) throw new Error('no profile written')
  const kept = join(out, 'cache-hit.cpuprofile')
  await rename(join(profDir, file), kept)
  const profile = /** @type {CpuProfile} */ (JSON.parse(await readFile(kept, 'utf8')))
  const { fns, areas, total } = selfTimes(profile)
  sections.push(
    `### Bearer cache hit — ${Math.round(res.rps)} req/s, ${Math.round(res.cpuUs)} µs CPU/req (profile in bench/results/profiles/cache-hit.cpuprofile)`,
    table(areas, total, 20, 'area'),
    table(fns, total, top, 'function'),
  )
  console.log(sections.join('\n\n'))
} finally {
  await stack.stop()
  await rm(dir, { recursive: true, force: true })
}
