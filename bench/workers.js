// `node bench/workers.js` (after `npm run build`): `workers: auto` against `workers: 1` (issue 16,
// target 5). Starts the upstream, Redis and two tokengate instances from dist/ (one with
// `workers: 1`, one with `workers: auto`: a primary and one worker per core, sharing the port),
// then drives the Bearer cache-hit load (`/api/studies?limit=10`, 2,000 album tokens rotating, every
// one in each worker's LRU) at each, alternating, in several CPU layouts, and prints req/s and CPU
// µs per request for both. Never part of `npm test`.
//
// Layouts (taskset; the machine has `cores` cores, the load generator always runs on core 0):
// - `bench`: the main bench's layout, every server on the last core. Both workers then share one
//   core: the ratio shows what `workers: auto` costs when the cores are not there.
// - `gen0`: the generator on core 0, every server (tokengate's processes, upstream, Redis)
//   unpinned over all cores: the workers may use every core, sharing core 0 with the generator.
// - `free`: nothing pinned.
// Generators: autocannon in this process (what bench/run.js uses), and `wrk -t1` (a C load
// generator costing a fraction of autocannon's CPU per request) when `wrk` is installed.
// CPU µs/req: utime + stime of tokengate's processes (primary and workers) and Redis ÷ answers;
// the generator's and the upstream's are reported beside, and `busy` is the share of all cores'
// time (/proc/stat, other work on the machine included) that was not idle during the run.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { admin as adminModule, keys as keysModule } from './lib/dist.js'
import { runLoad } from './lib/load.js'
import { cores, cpuMicros, loadAverage, pinTo, processTree } from './lib/proc.js'
import { Stack } from './lib/stack.js'
import { median } from './lib/stats.js'

const HELP = `usage: node bench/workers.js [options]   (after npm run build)
  --seconds S        seconds per measured run (default 4)
  --rounds N         alternating rounds, medians over them (default 3)
  --connections C    connections (default 20; spread over the workers by the primary)
  --tokens N         distinct album tokens rotating (default 2000)
  --layouts LIST     bench,gen0,free (default gen0,free)
  --generators LIST  autocannon,wrk (default both; wrk only when installed)`

const { values: a } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '20' },
    tokens: { type: 'string', default: '2000' },
    layouts: { type: 'string', default: 'gen0,free' },
    generators: { type: 'string', default: 'autocannon,wrk' },
    help: { type: 'boolean', default: false },
  },
})
if (a.help) {
  console.log(HELP)
  process.exit(0)
}
const seconds = Number(a.seconds)
const rounds = Number(a.rounds)
const connections = Number(a.connections)
const tokenCount = Number(a.tokens)
const LAST = cores - 1
const ALL = Array.from({ length: cores }, (_, i) => i).join(',')
/** Where the generator and the servers run, per layout (null: not pinned). */
const LAYOUTS =
  /** @type {Record<string, { generator: string | null, servers: string | null, note: string }>} */ ({
    bench: {
      generator: '0',
      servers: String(LAST),
      note: `generator on core 0, every server on core ${LAST}`,
    },
    gen0: { generator: '0', servers: ALL, note: `generator on core 0, servers unpinned over cores ${ALL}` },
    free: { generator: null, servers: null, note: 'nothing pinned' },
  })
const layouts = String(a.layouts).split(',')
for (const l of layouts)
  if (!LAYOUTS[l]) throw new Error(`unknown layout ${l}; known: ${Object.keys(LAYOUTS)}`)
const wrkPath = await new Promise((resolve) =>
  execFile('sh', ['-c', 'command -v wrk'], (err, out) => resolve(err ? null : out.trim())),
)
const generators = String(a.generators)
  .split(',')
  .filter((g) => g === 'autocannon' || (g === 'wrk' && wrkPath))

const log = (/** @type {string} */ msg) => process.stderr.write(`${msg}\n`)

/** Non-idle and total jiffies of all cores, from /proc/stat. */
function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
  const total = f.reduce((s, x) => s + x, 0)
  const idle = (f[3] ?? 0) + (f[4] ?? 0)
  return { busy: total - idle, total }
}

/**
 * `wrk -t1` for `seconds` at `url`, the tokens rotating (a Lua script), pinned to `core` when given.
 * Its CPU time comes from the shell that waited for it (cutime + cstime in /proc/<sh>/stat).
 * @param {string} url @param {string} script @param {string | null} core
 */
async function runWrk(url, script, core) {
  const wrk = `${core === null ? '' : `taskset -c ${core} `}${wrkPath} -t1 -c${connections} -d${seconds}s -s ${script} ${url}`
  const out = await new Promise((resolve, reject) =>
    execFile('sh', ['-c', `${wrk}; echo; echo STAT $(cat /proc/$$/stat)`], (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    ),
  )
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN)
  const took = Number(/requests in ([\d.]+)s/.exec(out)?.[1] ?? Number.NaN)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  const errors = /Socket errors: (.*)/.exec(out)?.[1] ?? ''
  const stat = (/STAT (.*)/.exec(out)?.[1] ?? '').trim()
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // cutime, cstime: fields 16 and 17 of proc(5), index 13 and 14 after the ')'; clock ticks.
  const generatorCpuUs = ((Number(fields[13]) + Number(fields[14])) * 1e6) / 100
  return { requests, seconds: took, non2xx, errors, generatorCpuUs }
}

const dir = await mkdtemp(join(tmpdir(), 'tokengate-workers-'))
const stack = new Stack(dir)
/** @type {Redis | null} */
let client = null
try {
  log(`bench: starting servers in ${dir}`)
  const upstream = await stack.upstream()
  const redis = await stack.redis()
  const redisUrl = `redis://127.0.0.1:${redis.port}`
  client = new Redis(redisUrl)
  const tokenAdmin = new adminModule.TokenAdmin(client, keysModule.makeKeys('tg:'), {
    secretPrefix: 'tg_',
    expiredGrace: 60_000,
  })
  log(`bench: creating ${tokenCount} album tokens`)
  /** @type {string[]} */
  const tokens = []
  for (let i = 0; i < tokenCount; i += 250)
    tokens.push(
      ...(
        await Promise.all(
          Array.from({ length: Math.min(250, tokenCount - i) }, () =>
            tokenAdmin.create({ kind: 'album', album: 'bench', perms: 'read', expiresIn: '1d' }),
          ),
        )
      ).map((t) => t.token),
    )
  const path = '/api/studies?limit=10'
  const gen = (/** @type {number} */ i) => ({
    path,
    headers: { authorization: `Bearer ${tokens[i % tokens.length]}` },
  })
  const script = join(dir, 'rotate.lua')
  await writeFile(
    script,
    `local tokens = { ${tokens.map((t) => `"${t}"`).join(', ')} }
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "${path}", { ["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1] })
end
`,
  )
  const gateOpts = { upstream: upstream.url, redisUrl }
  const gates = [
    { id: 'workers: 1', server: await stack.tokengate('gate-1', { ...gateOpts, workers: 1, cpus: ALL }) },
    // Started on every core: `auto` counts the cores the process may run on.
    {
      id: 'workers: auto',
      server: await stack.tokengate('gate-auto', { ...gateOpts, workers: 'auto', cpus: ALL }),
    },
  ]
  // Every process of the servers (tokengate's workers are children of its primary).
  const serverPids = () => [upstream.pid, redis.pid, ...gates.flatMap((g) => processTree(g.server.pid))]

  /** @param {string} layout */
  const place = (layout) => {
    const l = LAYOUTS[layout] ?? LAYOUTS.free
    for (const pid of serverPids()) pinTo(pid, l?.servers ?? ALL)
    pinTo(process.pid, l?.generator ?? ALL)
  }

  /**
   * One measured run.
   * @param {typeof gates[number]} g @param {string} generator @param {string} layout @param {number} s
   */
  const measure = async (g, generator, layout, s) => {
    const upstreamPids = [upstream.pid]
    if (generator === 'autocannon') {
      const self0 = process.cpuUsage()
      const t0 = cpuTimes()
      const r = await runLoad({
        url: g.server.url,
        gen,
        connections,
        seconds: s,
        // runLoad adds each one's children (tokengate's workers).
        pids: [g.server.pid, redis.pid],
        upstreamPid: upstream.pid,
      })
      const t1 = cpuTimes()
      const self = process.cpuUsage(self0)
      return {
        rps: r.rps,
        cpuUs: r.cpuUs,
        upstreamCpuUs: r.upstreamCpuUs,
        generatorCpuUs: (self.user + self.system) / r.requests,
        busy: (t1.busy - t0.busy) / (t1.total - t0.total),
        bad: r.errors + Object.entries(r.statuses).reduce((n, [k, v]) => n + (k === '200' ? 0 : v), 0),
      }
    }
    const pids = [...processTree(g.server.pid), redis.pid]
    const cpu0 = cpuMicros(pids)
    const up0 = cpuMicros(upstreamPids)
    const t0 = cpuTimes()
    const r = await runWrk(g.server.url, script, LAYOUTS[layout]?.generator ?? null)
    const t1 = cpuTimes()
    if (r.errors) log(`  wrk socket errors: ${r.errors}`)
    return {
      rps: r.requests / r.seconds,
      cpuUs: (cpuMicros(pids) - cpu0) / r.requests,
      upstreamCpuUs: (cpuMicros(upstreamPids) - up0) / r.requests,
      generatorCpuUs: r.generatorCpuUs / r.requests,
      busy: (t1.busy - t0.busy) / (t1.total - t0.total),
      bad: r.non2xx,
    }
  }

  log('bench: priming every worker’s cache')
  place('free')
  for (const g of gates)
    await runLoad({ url: g.server.url, gen, connections, amount: tokens.length * 4, pids: [] })
  log(`bench: gate-auto runs ${processTree(gates[1]?.server.pid ?? 0).length} processes (primary + workers)`)

  /** @type {Record<string, Record<string, ReturnType<typeof measure> extends Promise<infer R> ? R[] : never>>} */
  const results = {}
  const loads = [loadAverage()]
  for (const layout of layouts) {
    place(layout)
    for (const generator of generators) {
      const key = `${layout} / ${generator}`
      results[key] = {}
      for (const g of gates) await measure(g, generator, layout, 1) // warm-up in this layout
      for (let r = 0; r < rounds; r++) {
        for (const g of r % 2 ? [...gates].reverse() : gates) {
          const m = await measure(g, generator, layout, seconds)
          const byGate = results[key]
          byGate[g.id] = [...(byGate[g.id] ?? []), m]
          log(
            `  ${key.padEnd(20)} r${r + 1} ${g.id.padEnd(14)} ${Math.round(m.rps).toString().padStart(6)} req/s ${Math.round(m.cpuUs).toString().padStart(4)} µs/req  generator ${Math.round(m.generatorCpuUs)} µs/req  busy ${Math.round(100 * m.busy)}%${m.bad ? `  ${m.bad} not 200` : ''}`,
          )
        }
      }
      loads.push(loadAverage())
    }
  }

  const f0 = (/** @type {number} */ x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–')
  const out = [
    `tokengate workers: ${new Date().toISOString()} — Node ${process.version}, ${cores} cores; load average ${loads[0]} at start, ${Math.max(...loads)} max.`,
    `Bearer cache hit over ${tokenCount} tokens, ${connections} connections, ${rounds} alternating rounds of ${seconds} s, medians. CPU µs/req: tokengate (primary + workers) + Redis.`,
    '',
    '| layout / generator | workers | req/s | ×workers: 1 | CPU µs/req | generator µs/req | upstream µs/req | all cores busy | not 200 |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const [key, byGate] of Object.entries(results)) {
    const one = median((byGate['workers: 1'] ?? []).map((m) => m.rps))
    for (const [id, ms] of Object.entries(byGate)) {
      const rps = median(ms.map((m) => m.rps))
      out.push(
        `| ${key} | ${id.replace('workers: ', '')} | ${f0(rps)} | ${(rps / one).toFixed(2)}× | ${f0(median(ms.map((m) => m.cpuUs)))} | ${f0(median(ms.map((m) => m.generatorCpuUs)))} | ${f0(median(ms.map((m) => m.upstreamCpuUs)))} | ${Math.round(100 * median(ms.map((m) => m.busy)))}% | ${ms.reduce((n, m) => n + m.bad, 0)} |`,
      )
    }
  }
  out.push('', 'Layouts:', ...layouts.map((l) => `- ${l}: ${LAYOUTS[l]?.note}`))
  console.log(out.join('\n'))
} finally {
  client?.disconnect()
  await stack.stop()
  await rm(dir, { recursive: true, force: true })
}
