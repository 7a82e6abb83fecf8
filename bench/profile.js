// `npm run bench:profile`: where tokengate's cache-hit path spends its CPU beyond its forwarding.
// Starts the upstream and Redis, then, one after the other, each row's server from dist/ under
// `node --cpu-prof` (default: tokengate forwarding with auth off, and tokengate with Bearer cache
// hits), primes the cache, drives the same load with autocannon, stops the server (the profile is
// written on exit), and prints self time per area (Node's http internals, undici, pino, lru-cache,
// tokengate's own modules, GC) and per function, in µs per request, side by side with the
// difference to the first row: every µs the auth adds, attributed to a function; and, per tokengate
// function, its inclusive time (what each stage costs with the Node and undici work it causes).
// `--rows auth-off,hit-raw,hit,hit-urls` picks the rows; `--rate R` runs each at R requests/s.
// The .cpuprofile files stay in bench/results/profiles/ (open them in Chrome DevTools or speedscope).
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { selfSignedCert } from './lib/certs.js'
import { admin as adminModule, keys as keysModule } from './lib/dist.js'
import { runLoad } from './lib/load.js'
import { LOAD_CORE, loadAverage, pinSelf, pinTo } from './lib/proc.js'
import { Stack } from './lib/stack.js'

const { values: a } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    tokens: { type: 'string', default: '2000' },
    top: { type: 'string', default: '30' },
    // Profiled one after the other under the same load; the first is the baseline the others are
    // compared with, function by function, in µs per request.
    rows: { type: 'string', default: 'auth-off,hit' },
    // Requests per second of the profiled run (0: as fast as it goes). A row that answers faster
    // does more per wake-up and per write; at one rate the rows are compared at the same load.
    rate: { type: 'string', default: '0' },
  },
})
const seconds = Number(a.seconds)
const top = Number(a.top)
const rows = String(a.rows).split(',')
const PATHS = /** @type {Record<string, string>} */ ({
  'auth-off': '/api/studies?limit=10',
  hit: '/api/studies?limit=10',
  // An answer that is passed through, not rewritten (bench/servers/upstream.js answers any GET).
  'hit-raw': '/api/studies/1.2.3/rendered',
  // An answer holding several upstream URLs (bench/servers/upstream.js's ?urls=N).
  'hit-urls': '/api/studies?limit=10&urls=4',
  // Cache off (`cache.max: 0`): Redis on every request.
  miss: '/api/studies?limit=10',
  // HTTP/2 over TLS: one connection, 100 concurrent streams.
  'hit-h2': '/api/studies?limit=10',
})
for (const row of rows) if (!PATHS[row]) throw new Error(`unknown row ${row}; known: ${Object.keys(PATHS)}`)

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
 * Self time per function and per area, and inclusive time per tokengate function (its own and
 * everything it called: what a stage costs, where self time spreads it over Node and undici), in
 * µs, idle excluded.
 * @param {CpuProfile} profile
 */
function selfTimes(profile) {
  /** @type {Map<number, ProfileNode>} */
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  /** @type {Map<number, number>} */
  const parentOf = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
  /** @type {Map<string, number>} */
  const inclusive = new Map()
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
    const key = frameKey(functionName, url, lineNumber)
    fns.set(key, (fns.get(key) ?? 0) + us)
    // Each tokengate function on the sample's stack, once (recursion counts once).
    const onStack = new Set()
    for (let id = /** @type {number | undefined} */ (node.id); id !== undefined; id = parentOf.get(id)) {
      const f = /** @type {ProfileNode} */ (byId.get(id)).callFrame
      if (!f.url.includes('/dist/')) continue
      const k = frameKey(f.functionName, f.url, f.lineNumber)
      if (onStack.has(k)) continue
      onStack.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + us)
    }
    const where =
      functionName === '(garbage collector)'
        ? 'GC'
        : functionName === '(program)'
          ? 'V8 / native'
          : area(url, functionName)
    areas.set(where, (areas.get(where) ?? 0) + us)
    total += us
  }
  return { fns, areas, inclusive, total }
}

/** `name file:line`, with node_modules/ and dist/ paths shortened. */
function frameKey(/** @type {string} */ name, /** @type {string} */ url, /** @type {number} */ line) {
  const short = url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'dist/')
  return `${name || '(anonymous)'} ${short ? `${short}:${line + 1}` : ''}`.trim()
}

/**
 * µs per request of each key.
 * @param {Map<string, number>} m @param {number} requests
 */
const perRequest = (m, requests) => new Map([...m].map(([k, us]) => [k, us / requests]))

/**
 * Baseline and rows side by side, µs per request, sorted by the largest difference to the baseline.
 * @param {string} what @param {string[]} names @param {Map<string, number>[]} maps @param {number} n
 * @param {boolean} [sums] whether a total row means anything (not for inclusive times: they overlap)
 */
function diffTable(what, names, maps, n, sums = true) {
  const [base, ...others] = maps
  const keys = new Set(maps.flatMap((m) => [...m.keys()]))
  const last = /** @type {Map<string, number>} */ (others.at(-1) ?? base)
  const b = /** @type {Map<string, number>} */ (base)
  const rowsOut = [...keys]
    .map((k) => ({ k, d: (last.get(k) ?? 0) - (b.get(k) ?? 0) }))
    .sort((x, y) => Math.abs(y.d) - Math.abs(x.d))
    .slice(0, n)
  const fmt = (/** @type {number | undefined} */ v) => (v ? v.toFixed(1) : '–')
  return [
    `| ${what} | ${names.map((x) => `${x} µs/req`).join(' | ')} | ${names.at(-1)} − ${names[0]} |`,
    `| --- |${names.map(() => ' ---: |').join('')} ---: |`,
    ...rowsOut.map(
      ({ k, d }) =>
        `| \`${k.replaceAll('|', '\\|')}\` | ${maps.map((m) => fmt(m.get(k))).join(' | ')} | ${d >= 0 ? '+' : ''}${d.toFixed(1)} |`,
    ),
    ...(sums
      ? [
          `| **total** | ${maps.map((m) => [...m.values()].reduce((x, y) => x + y, 0).toFixed(1)).join(' | ')} | ${(
            [...last.values()].reduce((x, y) => x + y, 0) - [...b.values()].reduce((x, y) => x + y, 0)
          ).toFixed(1)} |`,
        ]
      : []),
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
  // The profiled process gets the server core to itself: the V8 profiler samples wall time, so a
  // process sharing its core would show the time it was preempted (e.g. by the upstream it just
  // woke) inside whatever it was doing, mostly socket writes.
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
  const sections = [
    `Profiles of ${rows.join(', ')}: ${seconds} s of autocannon -c 10${Number(a.rate) > 0 ? ` at ${a.rate} req/s` : ''} over ${tokens.length} Bearer tokens each, node --cpu-prof, ${new Date().toISOString()}, load average ${loadAverage()}. The profiled process alone on the server core; autocannon, the upstream and Redis on core ${LOAD_CORE}. Self time (wall-clock samples while not idle) over the process's whole life (start-up and cache priming included) ÷ every answer it gave; the profiler itself adds to every figure.`,
  ]
  /** @type {Map<string, number>[]} */
  const areaMaps = []
  /** @type {Map<string, number>[]} */
  const fnMaps = []
  /** @type {Map<string, number>[]} */
  const inclusiveMaps = []
  for (const row of rows) {
    const specs = tokens.map((t) => ({
      path: /** @type {string} */ (PATHS[row]),
      headers: { authorization: `Bearer ${t.token}` },
    }))
    const gen = (/** @type {number} */ i) =>
      /** @type {import('./lib/load.js').RequestSpec} */ (specs[i % specs.length])
    const profDir = join(dir, `prof-${row}`)
    const o = { upstream: upstream.url, redisUrl, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] }
    const tls = row === 'hit-h2' ? selfSignedCert(join(dir, 'tls')) : undefined
    const gate =
      row === 'auth-off'
        ? await stack.authOff(row, o)
        : await stack.tokengate(
            row,
            row === 'miss' ? { ...o, cache: '{ max: 0 }' } : tls ? { ...o, tls, http2: row === 'hit-h2' } : o,
          )
    const base = {
      url: gate.url,
      gen,
      pids: [gate.pid],
      connections: 10,
      ...(row === 'hit-h2' ? { streams: 100 } : {}),
    }
    const primed = await runLoad({ ...base, amount: tokens.length })
    const warm = await runLoad({ ...base, seconds: 2 })
    const res = await runLoad({ ...base, seconds, ...(Number(a.rate) > 0 ? { rate: Number(a.rate) } : {}) })
    await stack.stopOne(gate)
    const [file] = await readdir(profDir)
    if (!file) throw new Error('no profile written')
    const kept = join(out, `${row}.cpuprofile`)
    await rename(join(profDir, file), kept)
    const profile = /** @type {CpuProfile} */ (JSON.parse(await readFile(kept, 'utf8')))
    const { fns, areas, inclusive } = selfTimes(profile)
    const answers = primed.requests + warm.requests + res.requests
    areaMaps.push(perRequest(areas, answers))
    fnMaps.push(perRequest(fns, answers))
    inclusiveMaps.push(perRequest(inclusive, answers))
    sections.push(
      `- ${row}: ${Math.round(res.rps)} req/s, ${Math.round(res.cpuUs)} µs CPU/req measured from /proc (profiler on), answers ${JSON.stringify(res.statuses)}; profile in bench/results/profiles/${row}.cpuprofile`,
    )
  }
  sections.push(
    '### By area, µs per request',
    diffTable('area', rows, areaMaps, 30),
    `### By function (top ${top} differences), µs per request`,
    diffTable('function', rows, fnMaps, top),
    `### tokengate's functions, inclusive (self and everything they called; top ${top} differences), µs per request`,
    diffTable('function', rows, inclusiveMaps, top, false),
  )
  console.log(sections.join('\n\n'))
} finally {
  await stack.stop()
  await rm(dir, { recursive: true, force: true })
}
