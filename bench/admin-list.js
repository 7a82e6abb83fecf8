// `node bench/admin-list.js [--tokens N] [--rounds R]`: how long the operator waits for a page of
// 100 tokens among N (issue 14: "well under a second" among 100,000). Starts redis-server, writes
// N album tokens in `token create`'s layout (lib/population.js), then times `TokenAdmin.listPage`
// from dist/ for the pages issue 14 names: the first, one deep in (createdAfter), newest first, and
// one album's (an index set, filtered and sorted). Prints median and slowest of R rounds per page.
// A timing, so a bench and not a test: test/integration/admin-bulk.test.ts checks the pages' contents.
import { tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { TokenAdmin } from '../dist/admin/tokens.js'
import { makeKeys } from '../dist/token/keys.js'
import { seedIndexedTokens } from './lib/population.js'
import { Stack } from './lib/stack.js'
import { median } from './lib/stats.js'

const { values: a } = parseArgs({
  options: {
    tokens: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '7' },
  },
})
const count = Number(a.tokens)
const rounds = Number(a.rounds)
const ALBUMS = 50

const stack = new Stack(tmpdir())
const redisServer = await stack.redis()
const redis = new Redis({ port: redisServer.port })
const keys = makeKeys('tg:')
// Two days back, as the test has it: every token is live, none expired.
const t0 = Math.floor(Date.now() / 1000) * 1000 - 2 * 86_400_000
const seedStarted = performance.now()
await seedIndexedTokens(redis, keys, { count, t0, albums: ALBUMS })
const seedMs = performance.now() - seedStarted
const admin = new TokenAdmin(redis, keys, {
  secretPrefix: 'tg_',
  expiredGrace: 60_000,
  now: () => t0 + count * 1000,
})

const deepIn = new Date(t0 + Math.floor(count * 0.78) * 1000).toISOString()
/** @type {[string, Record<string, unknown>][]} */
const pages = [
  ['first page', {}],
  [
    `deep in (createdAfter, token ${Math.floor(count * 0.78).toLocaleString('en-US')})`,
    { createdAfter: deepIn },
  ],
  ['newest first', { desc: true }],
  [`one album (1 in ${ALBUMS})`, { album: 'album-7' }],
]
/** @type {Map<string, number[]>} */
const times = new Map(pages.map(([name]) => [name, []]))
for (let r = 0; r < rounds; r++) {
  for (const [name, input] of pages) {
    const started = performance.now()
    const page = await admin.listPage({ ...input, limit: 100 })
    const ms = performance.now() - started
    if (page.items.length !== 100) throw new Error(`${name}: ${page.items.length} items, not 100`)
    times.get(name)?.push(ms)
  }
}

console.log(
  `pages of 100 among ${count.toLocaleString('en-US')} tokens (written in ${(seedMs / 1000).toFixed(1)} s), ${rounds} rounds`,
)
console.log('| page | median ms | slowest ms |')
console.log('| --- | ---: | ---: |')
for (const [name, ms] of times) {
  console.log(`| ${name} | ${median(ms).toFixed(1)} | ${Math.max(...ms).toFixed(1)} |`)
}
redis.disconnect()
await Promise.all(stack.servers.map((server) => server.stop()))
