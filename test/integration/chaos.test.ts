// Chaos (issue 12): for a bounded time, concurrent clients with valid tokens against an upstream
// that at random answers normally, resets before or after its headers, answers slowly or goes
// silent, sends invalid HTTP, or closes after its headers (bench/lib/chaos.js) — through a real
// `tokengate serve` process with URL rewriting, split searches and STOW-RS recording. The process
// never exits; every answer is either complete and right or visibly cut; its open file
// descriptors return to their starting level afterwards. `node bench/soak.js --chaos-seconds N`
// runs the same for longer.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  CHAOS_ALBUM,
  CHAOS_STOW_ALBUM,
  CHAOS_STUDIES,
  chaosConfig,
  fdsBackTo,
  openFds,
  runChaosClients,
  startChaosUpstream,
} from '../../bench/lib/chaos.js'
import { admin } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { serveTokengate, writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'

/** Seconds of chaos: a few in `npm test`, more with TOKENGATE_CHAOS_SECONDS. */
const SECONDS = Number(process.env.TOKENGATE_CHAOS_SECONDS ?? 10)

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startChaosUpstream()
t.teardown(upstream.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-chaos-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await redis.client.sadd(`tg:album:${CHAOS_ALBUM}:studies`, ...CHAOS_STUDIES)
const tokens = admin(redis.client)
const read = await tokens.create({ kind: 'album', album: CHAOS_ALBUM, perms: 'read', expiresIn: '1h' })
const write = await tokens.create({
  kind: 'album',
  album: CHAOS_STOW_ALBUM,
  perms: 'read,write',
  expiresIn: '1h',
})
const gate = await serveTokengate(
  await writeConfig(dir, 'chaos.yaml', chaosConfig({ redisUrl: redis.url, upstreamUrl: upstream.url })),
)
t.teardown(() => gate.stop('SIGKILL'))
const pid = gate.proc.pid as number
let exited: string | null = null
void once(gate.proc, 'exit').then(([code, signal]) => {
  exited = `exit code ${code}, signal ${signal}`
})

t.test(
  `${SECONDS} s of a misbehaving upstream: the process lives, every answer is complete and right or visibly cut, no descriptor leaks`,
  { timeout: (SECONDS + 60) * 1000 },
  async (t) => {
    // Warm up with a well-behaved upstream (lazily opened descriptors, kept-alive sockets), then
    // take the starting level once those idle sockets are gone again.
    upstream.chaos = false
    await runChaosClients({
      gateUrl: gate.url,
      readToken: read.token,
      writeToken: write.token,
      seconds: 0.5,
      concurrency: 4,
    })
    upstream.chaos = true
    const start = openFds(pid)

    const tally = await runChaosClients({
      gateUrl: gate.url,
      readToken: read.token,
      writeToken: write.token,
      seconds: SECONDS,
      concurrency: 16,
    })
    t.comment(JSON.stringify({ tally, behaviours: upstream.behaviours }))

    // What tokengate logged as unexpected, to explain a failure.
    for (const line of gate
      .output()
      .split('\n')
      .filter((l) => /"level":50|unexpected/.test(l))
      .slice(0, 5))
      t.comment(line)
    t.equal(exited, null, 'the tokengate process never exited')
    t.same(tally.violations, [], 'no complete answer is wrong (never a short body presented as complete)')
    t.ok(tally.complete200 > 0, `whole answers got through (${tally.complete200})`)
    t.ok(tally.cut > 0, `some answers were cut mid-body (${tally.cut})`)
    t.ok(tally.completeError > 0, `some failures were answered 502/504 (${tally.completeError})`)
    t.equal(
      tally.complete200 + tally.completeError + tally.cut + tally.failedBeforeAnswer + tally.wrong,
      tally.requests,
      'every request ended one of those ways',
    )

    upstream.chaos = false
    const fds = await fdsBackTo(pid, start, 20_000)
    t.ok(fds <= start, `open descriptors back to the starting level (${fds} now, ${start} at start)`)
    const after = await send(gate.url, {
      path: `/api/studies/${CHAOS_STUDIES[0]}/metadata`,
      headers: bearer(read.token),
    })
    t.equal(after.status, 200, 'and it still serves')
  },
)
