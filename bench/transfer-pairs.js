// `node bench/transfer-pairs.js A B` (after `npm run build` in both checkouts): before/after of a
// change to the body path, as paired transfers. Two tokengate instances, from checkouts A and B
// ('.' = this one), behind one upstream; each pair downloads (then uploads) the same bytes through
// A and through B back to back, A B / B A alternately, and the report is the median over pairs of
// B ÷ A (CPU seconds per GB of the tokengate process, and MB/s). A single tokengate process can
// run several transfers 2–3× slower than usual (bench/README.md, large transfers), so one run of
// each side decides nothing; run it both ways (A B, then B A) and with A = B for the noise floor.
// Never part of `npm test`.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { admin as adminModule, keys as keysModule } from './lib/dist.js'
import { pinSelf } from './lib/proc.js'
import { Stack } from './lib/stack.js'
import { median, quantile } from './lib/stats.js'
import { transfer } from './lib/transfer.js'

const HELP = `usage: node bench/transfer-pairs.js [options] CHECKOUT_A CHECKOUT_B   ('.' = this checkout)
  --mb M       size of each transfer (default 256)
  --pairs N    pairs per direction (default 12)`

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mb: { type: 'string', default: '256' },
    pairs: { type: 'string', default: '12' },
    help: { type: 'boolean', default: false },
  },
})
if (a.help || positionals.length !== 2) {
  console.log(HELP)
  process.exit(a.help ? 0 : 2)
}
const bytes = Number(a.mb) * 1048576
const pairs = Number(a.pairs)
const log = (/** @type {string} */ msg) => process.stderr.write(`${msg}\n`)

pinSelf()
const dir = await mkdtemp(join(tmpdir(), 'tokengate-pairs-'))
const stack = new Stack(dir)
try {
  const upstream = await stack.upstream()
  const redis = await stack.redis()
  const redisUrl = `redis://127.0.0.1:${redis.port}`
  const client = new Redis(redisUrl)
  const tokenAdmin = new adminModule.TokenAdmin(client, keysModule.makeKeys('tg:'), {
    secretPrefix: 'tg_',
    expiredGrace: 60_000,
  })
  const writer = await tokenAdmin.create({
    kind: 'album',
    album: 'bench',
    perms: 'read,write',
    expiresIn: '1d',
  })
  client.disconnect()
  /** @type {import('./lib/stack.js').Listening[]} */
  const gates = []
  for (const checkout of positionals) {
    const root = checkout === '.' ? undefined : resolve(checkout)
    gates.push(await stack.tokengate(`gate-${gates.length}`, { upstream: upstream.url, redisUrl, root }))
  }
  /**
   * @param {typeof gates[number]} gate
   * @param {'download' | 'upload'} direction
   */
  const one = (gate, direction) =>
    transfer({
      url: gate.url,
      path: direction === 'upload' ? '/api/studies/1/studies' : `/api/studies/1/stream/${bytes}`,
      direction,
      bytes,
      headers: { authorization: `Bearer ${writer.token}` },
      watchPid: gate.pid,
      upstreamPid: upstream.pid,
    })
  // Warm-up: a cold process's first transfer pays its start-up (and its first big GC).
  for (const gate of gates) for (const d of /** @type {const} */ (['download', 'upload'])) await one(gate, d)
  const out = [
    `${a.mb} MB transfers, ${pairs} pairs per direction, A = ${positionals[0]}, B = ${positionals[1]}; medians of B ÷ A (quartiles)`,
    '',
    '| direction | CPU s/GB, B ÷ A | MB/s, B ÷ A | A CPU s/GB | B CPU s/GB |',
    '| --- | ---: | ---: | ---: | ---: |',
  ]
  for (const direction of /** @type {const} */ (['download', 'upload'])) {
    /** @type {{ cpu: number, mbs: number, a: number, b: number }[]} */
    const ratios = []
    for (let i = 0; i < pairs; i++) {
      /** @type {import('./lib/transfer.js').TransferResult[]} */
      const r = []
      for (const k of i % 2 ? [1, 0] : [0, 1])
        r[k] = await one(/** @type {typeof gates[number]} */ (gates[k]), direction)
      const [ra, rb] =
        /** @type {[import('./lib/transfer.js').TransferResult, import('./lib/transfer.js').TransferResult]} */ (
          r
        )
      ratios.push({
        cpu: rb.cpuSPerGb / ra.cpuSPerGb,
        mbs: rb.mbPerS / ra.mbPerS,
        a: ra.cpuSPerGb,
        b: rb.cpuSPerGb,
      })
      log(
        `  ${direction} pair ${i + 1}: A ${ra.cpuSPerGb.toFixed(2)} s/GB ${Math.round(ra.mbPerS)} MB/s | B ${rb.cpuSPerGb.toFixed(2)} s/GB ${Math.round(rb.mbPerS)} MB/s`,
      )
    }
    /** @param {number[]} xs */
    const spread = (xs) =>
      `${median(xs).toFixed(2)} (${quantile(xs, 0.25).toFixed(2)}–${quantile(xs, 0.75).toFixed(2)})`
    out.push(
      `| ${direction} | ${spread(ratios.map((x) => x.cpu))} | ${spread(ratios.map((x) => x.mbs))} | ${median(ratios.map((x) => x.a)).toFixed(2)} | ${median(ratios.map((x) => x.b)).toFixed(2)} |`,
    )
  }
  console.log(out.join('\n'))
} finally {
  await stack.stop()
  await rm(dir, { recursive: true, force: true })
}
