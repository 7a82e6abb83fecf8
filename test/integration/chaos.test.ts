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
import { CHAOS_STUDIES, chaosConfig, runChaos, seedChaos, startChaosUpstream } from '../../bench/lib/chaos.js'
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
const tokens = await seedChaos(redis.client, admin(redis.client))
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
    const { tally, fds } = await runChaos({
      upstream,
      pid,
      clients: { gateUrl: gate.url, ...tokens, concurrency: 16 },
      seconds: SECONDS,
      alive: () => exited === null,
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

    t.ok(
      fds.end <= fds.start,
      `open descriptors back to the starting level (${fds.end} now, ${fds.start} at start)`,
    )
    const after = await send(gate.url, {
      path: `/api/studies/${CHAOS_STUDIES[0]}/metadata`,
      headers: bearer(tokens.readToken),
    })
    t.equal(after.status, 200, 'and it still serves')
  },
)
