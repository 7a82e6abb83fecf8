// `node bench/equal-load.js [--rates 0,5000,8000] [--rounds 5] [--duration 3]`: tokengate's cache
// hit against its forwarding with auth off (issue 16, target 2), CPU per request of the server
// process, as fast as it goes (rate 0, as `npm run bench` measures) and at fixed rates that both
// rows sustain. As fast as it goes, the row that answers faster does more per wake-up and per
// socket write, so its CPU per request is lower for that reason alone; at one rate both rows are
// compared under the same load. Rows and rates alternate within each round; medians of the rounds.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { makeKeys } from '../dist/token/keys.js'
import { runLoad } from './lib/load.js'
import { seedAlbumTokens } from './lib/population.js'
import { LOAD_CORE, loadAverage, pinSelf, pinTo } from './lib/proc.js'
import { Stack } from './lib/stack.js'
import { median } from './lib/stats.js'

const { values: a } = parseArgs({
  options: {
    rates: { type: 'string', default: '0,5000,8000' },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '2000' },
  },
})
const rates = String(a.rates).split(',').map(Number)
const rounds = Number(a.rounds)
const seconds = Number(a.duration)

pinSelf()
const dir = await mkdtemp(join(tmpdir(), 'tokengate-equal-load-'))
const stack = new Stack(dir)
try {
  const upstream = await stack.upstream()
  const redis = await stack.redis()
  pinTo(upstream.pid, LOAD_CORE)
  const redisUrl = `redis://127.0.0.1:${redis.port}`
  const client = new Redis(redisUrl)
  const secrets = await seedAlbumTokens(client, makeKeys('tg:'), Number(a.tokens))
  client.disconnect()
  const o = { upstream: upstream.url, redisUrl }
  const rows = /** @type {const} */ ([
    ['auth-off', await stack.authOff('auth-off', o)],
    ['hit', await stack.tokengate('hit', o)],
  ])
  const specs = secrets.map((s) => ({
    path: '/api/studies?limit=10',
    headers: { authorization: `Bearer ${s}` },
  }))
  const gen = (/** @type {number} */ i) =>
    /** @type {import('./lib/load.js').RequestSpec} */ (specs[i % specs.length])
  const base = (/** @type {import('./lib/stack.js').Listening} */ g) => ({
    url: g.url,
    gen,
    pids: [g.pid],
    connections: 10,
  })
  // Prime the hit row's cache (every token once), then warm both up.
  for (const [, g] of rows) {
    await runLoad({ ...base(g), amount: specs.length })
    await runLoad({ ...base(g), seconds: 2 })
  }
  /** @type {Map<string, { rps: number, cpuUs: number }[]>} */
  const runs = new Map()
  for (let r = 0; r < rounds; r++)
    for (const rate of rates)
      for (const [id, g] of r % 2 ? [...rows].reverse() : rows) {
        const res = await runLoad({ ...base(g), seconds, ...(rate ? { rate } : {}) })
        const key = `${rate}|${id}`
        runs.set(key, [...(runs.get(key) ?? []), res])
      }
  const med = (/** @type {string} */ key, /** @type {'rps' | 'cpuUs'} */ f) =>
    median((runs.get(key) ?? []).map((x) => x[f]))
  console.log(
    `auth-off and hit (Bearer, cache hit, default config), ${rounds} rounds × ${seconds} s, autocannon -c 10, ${specs.length} tokens, load average ${loadAverage()}; CPU µs per request of the server process (medians)\n`,
  )
  console.log(
    '| rate | auth-off req/s | auth-off µs | hit req/s | hit µs | hit − auth-off | hit ÷ auth-off |',
  )
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const rate of rates) {
    const off = med(`${rate}|auth-off`, 'cpuUs')
    const hit = med(`${rate}|hit`, 'cpuUs')
    console.log(
      `| ${rate ? `${rate} req/s` : 'as fast as it goes'} | ${Math.round(med(`${rate}|auth-off`, 'rps'))} | ${off.toFixed(1)} | ${Math.round(med(`${rate}|hit`, 'rps'))} | ${hit.toFixed(1)} | +${(hit - off).toFixed(1)} | ${(hit / off).toFixed(2)}× |`,
    )
  }
} finally {
  await stack.stop()
  await rm(dir, { recursive: true, force: true })
}
