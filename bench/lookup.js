// `node bench/lookup.js [--lookups N] [--concurrency C] [--rounds R]`: what one Redis token lookup
// (a cache miss) costs, without HTTP around it. Starts redis-server on the server core (this process
// on the load core, as bench/run.js places them), stores a population of album tokens shaped as
// `token create` writes them (with a user record, lib/population.js), then runs
// `RedisTokenStore.lookup` from dist/ with C lookups in flight (as C client connections would keep
// them) and prints, per lookup, this process's CPU (user / system, from process.cpuUsage) and
// Redis's (INFO's used_cpu_*), and Redis's own time in the lookup script (INFO commandstats).
// Medians of R rounds. Issue 16 target 3 is about this cost: it is what a miss adds to a hit.
import { tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { hashSecret } from '../dist/credential/secret.js'
import { makeKeys } from '../dist/token/keys.js'
import { RedisTokenStore } from '../dist/token/redis-store.js'
import { seedAlbumTokens } from './lib/population.js'
import { pinSelf } from './lib/proc.js'
import { Stack } from './lib/stack.js'
import { median } from './lib/stats.js'

const { values: a } = parseArgs({
  options: {
    lookups: { type: 'string', default: '40000' },
    concurrency: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '10000' },
  },
})
const lookups = Number(a.lookups)
const concurrency = Number(a.concurrency)
const rounds = Number(a.rounds)
const count = Number(a.tokens)

pinSelf()
const stack = new Stack(tmpdir())
const redisServer = await stack.redis()
const port = redisServer.port
const redis = new Redis({ port })
const keys = makeKeys('tg:')
const hashes = (await seedAlbumTokens(redis, keys, count)).map(hashSecret)

const client = new Redis({ port, enableAutoPipelining: true, commandTimeout: 2000 })
client.on('error', () => {})
const store = new RedisTokenStore(client, keys)
// Warm up (and load the script).
for (let i = 0; i < 3000; i++) await store.lookup(/** @type {any} */ (hashes[i % count]))

/** Redis's INFO fields as numbers. */
async function info() {
  const text = await redis.info('all')
  /** @type {Record<string, number>} */
  const out = {}
  for (const line of text.split('\r\n')) {
    const m = /^(used_cpu_user|used_cpu_sys):([\d.]+)/.exec(line)
    if (m) out[/** @type {string} */ (m[1])] = Number(m[2])
    const c = /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(line)
    if (c) {
      out[`${c[1]}_calls`] = Number(c[2])
      out[`${c[1]}_usec`] = Number(c[3])
    }
  }
  return out
}

/** @type {{ user: number, system: number, redis: number, command: number }[]} */
const results = []
for (let r = 0; r < rounds; r++) {
  await redis.config('RESETSTAT')
  const before = await info()
  const cpu0 = process.cpuUsage()
  let next = 0
  let found = 0
  const worker = async () => {
    while (next < lookups) {
      const i = next++
      if (await store.lookup(/** @type {any} */ (hashes[(i * 7919) % count]))) found++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const cpu = process.cpuUsage(cpu0)
  const after = await info()
  if (found !== lookups) throw new Error(`only ${found} of ${lookups} lookups found their record`)
  // The lookup script's own time (commands it calls are counted inside it, and again on their own).
  const commandUs = (after.evalsha_usec ?? 0) + (after.eval_usec ?? 0)
  results.push({
    user: cpu.user / lookups,
    system: cpu.system / lookups,
    redis:
      (((after.used_cpu_user ?? 0) -
        (before.used_cpu_user ?? 0) +
        (after.used_cpu_sys ?? 0) -
        (before.used_cpu_sys ?? 0)) *
        1e6) /
      lookups,
    command: commandUs / lookups,
  })
}
const col = (/** @type {'user' | 'system' | 'redis' | 'command'} */ k) =>
  median(results.map((x) => x[k])).toFixed(1)
console.log(
  `${lookups.toLocaleString('en-US')} lookups × ${rounds} rounds, ${concurrency} in flight, ${count.toLocaleString('en-US')} tokens (medians, µs per lookup)`,
)
console.log('| tokengate user | tokengate system | tokengate total | Redis CPU | Redis in the script |')
console.log('| ---: | ---: | ---: | ---: | ---: |')
const total = (Number(col('user')) + Number(col('system'))).toFixed(1)
console.log(`| ${col('user')} | ${col('system')} | ${total} | ${col('redis')} | ${col('command')} |`)
await store.close()
redis.disconnect()
await Promise.all(stack.servers.map((server) => server.stop()))
