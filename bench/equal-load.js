// `node bench/equal-load.js [--rows auth-off,hit,miss] [--rates 0,3000] [--rounds 5] [--duration 3]`:
// tokengate's cache hit against its forwarding with auth off (issue 16, target 2) and, with the
// `miss` row (cache off), a cache miss against the hit (target 3); CPU per request of the server
// process and of Redis, as fast as it goes (rate 0, as `npm run bench` measures) and at fixed
// rates that the rows sustain. As fast as it goes, the row that answers faster does more per
// wake-up and per socket write, so its CPU per request is lower for that reason alone; at one
// rate the rows are compared under the same load. Rows and rates alternate within each round;
// medians of the rounds.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { makeKeys } from '../dist/token/keys.js'
import { runLoad } from './lib/load.js'
import { seedAlbumTokens } from './lib/population.js'
import { cpuMicros, LOAD_CORE, loadAverage, pinSelf, pinTo } from './lib/proc.js'
import { Stack } from './lib/stack.js'
import { median } from './lib/stats.js'

const { values: a } = parseArgs({
  options: {
    rows: { type: 'string', default: 'auth-off,hit' },
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
  /** @type {Record<string, () => Promise<import('./lib/stack.js').Listening>>} */
  const start = {
    'auth-off': () => stack.authOff('auth-off', o),
    hit: () => stack.tokengate('hit', o),
    miss: () => stack.tokengate('miss', { ...o, cache: '{ max: 0 }' }),
  }
  /** @type {[string, import('./lib/stack.js').Listening][]} */
  const rows = []
  for (const id of String(a.rows).split(',')) {
    const begin = start[id]
    if (!begin) throw new Error(`unknown row ${id}; known: ${Object.keys(start)}`)
    rows.push([id, await begin()])
  }
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
  // Prime the hit row's cache (every token once), then warm every row up.
  for (const [, g] of rows) {
    await runLoad({ ...base(g), amount: specs.length })
    await runLoad({ ...base(g), seconds: 2 })
  }
  /** @type {Map<string, { rps: number, cpuUs: number, redisUs: number }[]>} */
  const runs = new Map()
  for (let r = 0; r < rounds; r++)
    for (const rate of rates)
      for (const [id, g] of r % 2 ? [...rows].reverse() : rows) {
        const redis0 = cpuMicros([redis.pid])
        const res = await runLoad({ ...base(g), seconds, ...(rate ? { rate } : {}) })
        const redisUs = (cpuMicros([redis.pid]) - redis0) / res.requests
        const key = `${rate}|${id}`
        runs.set(key, [...(runs.get(key) ?? []), { rps: res.rps, cpuUs: res.cpuUs, redisUs }])
      }
  const med = (/** @type {string} */ key, /** @type {'rps' | 'cpuUs' | 'redisUs'} */ f) =>
    median((runs.get(key) ?? []).map((x) => x[f]))
  const rateName = (/** @type {number} */ rate) => (rate ? `${rate} req/s` : 'as fast as it goes')
  console.log(
    `${rows.map(([id]) => id).join(', ')} (Bearer, default config; miss: cache off), ${rounds} rounds × ${seconds} s, autocannon -c 10, ${specs.length} tokens, load average ${loadAverage()}; CPU µs per request of the server process and of Redis (medians)\n`,
  )
  console.log('| rate | row | req/s | server µs | Redis µs | total µs |')
  console.log('| --- | --- | ---: | ---: | ---: | ---: |')
  /** @type {Map<string, number>} */
  const total = new Map()
  for (const rate of rates)
    for (const [id] of rows) {
      const key = `${rate}|${id}`
      total.set(key, med(key, 'cpuUs') + med(key, 'redisUs'))
      console.log(
        `| ${rateName(rate)} | ${id} | ${Math.round(med(key, 'rps'))} | ${med(key, 'cpuUs').toFixed(1)} | ${med(key, 'redisUs').toFixed(1)} | ${(total.get(key) ?? 0).toFixed(1)} |`,
      )
    }
  // The targets' ratios, on server + Redis as `npm run bench` counts them.
  for (const [what, of, to] of [
    ['hit ÷ auth-off (target 2, ≤ 1.3×)', 'hit', 'auth-off'],
    ['miss ÷ hit (target 3, ≤ 1.3×)', 'miss', 'hit'],
  ]) {
    if (!rows.some(([id]) => id === of) || !rows.some(([id]) => id === to)) continue
    const per = rates.map((rate) => {
      const x = total.get(`${rate}|${of}`) ?? Number.NaN
      const y = total.get(`${rate}|${to}`) ?? Number.NaN
      return `${rateName(rate)} ${(x / y).toFixed(2)}× (+${(x - y).toFixed(1)} µs)`
    })
    console.log(`\n${what}: ${per.join('; ')}`)
  }
} finally {
  await stack.stop()
  await rm(dir, { recursive: true, force: true })
}
