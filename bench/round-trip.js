// `node bench/round-trip.js [--seconds S] [--rounds R] [--tokens N]`: the floor under issue 16's
// target 3 (a cache miss ≤ 1.3× a cache hit). Three bare Node HTTP servers (bench/servers/
// round-trip.js) answer the same small body: at once, after one Redis PING, and after one
// tokengate token lookup (RedisTokenStore: batched script call). Driven by the bench's autocannon
// harness (-c 10, Bearer tokens rotating), server and Redis on the server core, CPU µs per request
// of the server plus Redis, medians of R alternating rounds. `ping − plain` is what any design
// that asks Redis on every request pays before reading anything; `lookup − plain` is tokengate's.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { makeKeys } from '../dist/token/keys.js'
import { runLoad } from './lib/load.js'
import { seedAlbumTokens } from './lib/population.js'
import { pinSelf } from './lib/proc.js'
import { Stack } from './lib/stack.js'
import { median } from './lib/stats.js'

const { values: a } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '10000' },
  },
})
const seconds = Number(a.seconds)
const rounds = Number(a.rounds)
pinSelf()

const dir = await mkdtemp(join(tmpdir(), 'tokengate-round-trip-'))
const stack = new Stack(dir)
try {
  const redisServer = await stack.redis()
  const redisUrl = `redis://127.0.0.1:${redisServer.port}`
  const redis = new Redis(redisUrl)
  const keys = makeKeys('tg:')
  const secrets = await seedAlbumTokens(redis, keys, Number(a.tokens))
  redis.disconnect()
  const node = process.execPath
  const server = (/** @type {string} */ mode) =>
    stack.start(mode, node, (port) => [
      join(import.meta.dirname, 'servers/round-trip.js'),
      String(port),
      mode,
      redisUrl,
    ])
  const servers = { plain: await server('plain'), ping: await server('ping'), lookup: await server('lookup') }
  const gen = (/** @type {number} */ i) => ({
    path: '/',
    headers: { authorization: `Bearer ${secrets[i % secrets.length]}` },
  })
  /** @type {Record<string, number[]>} */
  const cpu = { plain: [], ping: [], lookup: [] }
  const modes = /** @type {(keyof typeof servers)[]} */ (Object.keys(servers))
  for (const mode of modes)
    await runLoad({ url: servers[mode].url, gen, seconds: 1, connections: 10, pids: [servers[mode].pid] })
  for (let r = 0; r < rounds; r++) {
    for (const mode of [...modes.slice(r % 3), ...modes.slice(0, r % 3)]) {
      const res = await runLoad({
        url: servers[mode].url,
        gen,
        seconds,
        connections: 10,
        pids: [servers[mode].pid, redisServer.pid],
      })
      if ((res.statuses['200'] ?? 0) !== res.requests)
        throw new Error(`${mode}: ${JSON.stringify(res.statuses)}`)
      cpu[mode]?.push(res.cpuUs)
    }
  }
  const m = Object.fromEntries(modes.map((k) => [k, median(cpu[k] ?? [])]))
  console.log(
    `autocannon -c 10, ${seconds} s × ${rounds} rounds; CPU µs per request (server + Redis), medians`,
  )
  console.log('| server | CPU µs/req | − plain |')
  console.log('| --- | ---: | ---: |')
  for (const k of modes)
    console.log(`| ${k} | ${(m[k] ?? 0).toFixed(1)} | ${((m[k] ?? 0) - (m.plain ?? 0)).toFixed(1)} |`)
} finally {
  await Promise.all(stack.servers.map((s) => s.stop()))
  await rm(dir, { recursive: true, force: true })
}
