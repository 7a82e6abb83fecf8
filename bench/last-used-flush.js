// `node bench/last-used-flush.js [--tokens N] [--rounds R] [--root D]`: how long a `last used`
// flush of N tokens holds the event loop (token/last-used.ts). Starts redis-server, writes N album
// tokens, notes a use of each and flushes, R times after one warm-up round; prints the synchronous part of flush() (what
// runs before it first yields) and the longest gap seen by a 1 ms timer while the flush runs, the
// delay every request in flight would see, beside the same timer on an idle loop. `--root D` takes
// tokengate's modules from checkout D's dist/ (a build before a change).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { seedAlbumTokens } from './lib/population.js'
import { pinSelf } from './lib/proc.js'
import { Stack } from './lib/stack.js'
import { median } from './lib/stats.js'

const { values: a } = parseArgs({
  options: {
    tokens: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '5' },
    root: { type: 'string', default: join(import.meta.dirname, '..') },
  },
})
const count = Number(a.tokens)
const dist = (/** @type {string} */ module) => join(resolve(String(a.root)), 'dist', module)
const { hashSecret } = await import(dist('credential/secret.js'))
const { makeKeys } = await import(dist('token/keys.js'))
const { recordLastUsed } = await import(dist('token/last-used.js'))

/** The longest gap between ticks of a 1 ms interval timer until `done` settles, in ms. */
async function longestGap(/** @type {Promise<unknown>} */ done) {
  let last = performance.now()
  let worst = 0
  const timer = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last)
    last = now
  }, 1)
  await done
  clearInterval(timer)
  return worst
}

pinSelf()
const dir = await mkdtemp(join(tmpdir(), 'tokengate-flush-'))
const stack = new Stack(dir)
try {
  const server = await stack.redis()
  const redis = new Redis({ port: server.port, enableAutoPipelining: true })
  const keys = makeKeys('tg:')
  const hashes = (await seedAlbumTokens(redis, keys, count)).map(hashSecret)
  const recorder = recordLastUsed(redis, keys, { intervalMs: 3_600_000, onError: console.error })
  /** @type {{ sync: number, gap: number, whole: number, idle: number }[]} */
  const runs = []
  // Round 0 warms up (the script's first call per connection is an EVAL) and is not counted.
  for (let r = 0; r <= Number(a.rounds); r++) {
    const now = Date.now()
    for (const h of hashes) recorder.seen(h, now + r)
    const idle = await longestGap(new Promise((ok) => setTimeout(ok, 50)))
    const t0 = performance.now()
    const flushed = recorder.flush()
    const sync = performance.now() - t0
    const gap = await longestGap(flushed)
    if (r > 0) runs.push({ sync, gap, whole: performance.now() - t0, idle })
  }
  await recorder.close()
  redis.disconnect()
  const med = (/** @type {'sync' | 'gap' | 'whole' | 'idle'} */ f) => median(runs.map((x) => x[f])).toFixed(1)
  const max = (/** @type {'sync' | 'gap'} */ f) => Math.max(...runs.map((x) => x[f])).toFixed(1)
  console.log(
    `last used flush of ${count} tokens, ${runs.length} rounds, dist from ${resolve(String(a.root))}\n`,
  )
  console.log('| ms | median | max |')
  console.log('| --- | ---: | ---: |')
  console.log(`| flush()'s synchronous part | ${med('sync')} | ${max('sync')} |`)
  console.log(`| longest 1 ms-timer gap during the flush | ${med('gap')} | ${max('gap')} |`)
  console.log(`| the whole flush | ${med('whole')} | – |`)
  console.log(`| longest 1 ms-timer gap, idle (50 ms) | ${med('idle')} | – |`)
} finally {
  await stack.stop()
  await rm(dir, { recursive: true, force: true })
}
