// Soak: many tokens, steady load, while Redis is restarted twice and the upstream is killed and
// restarted, all within a bounded run (default 60 s). Reports requests served and errors by kind,
// and fails (exit 1) if a revoked token ever passed or an answer belonged to another album.
//
//   npm run build && node bench/soak.js [--seconds 60] [--workers 2] [--concurrency 16] [--chaos-seconds 30]
//
// Then (unless --chaos-seconds 0) the longer form of test/integration/chaos.test.ts: a second
// tokengate process (scoping: studies) against an upstream that misbehaves at random
// (bench/lib/chaos.js); it fails if that process exits, if a complete answer is wrong (a short
// body presented as complete) or if its open file descriptors do not return to their start.
//
// Processes: redis-server (AOF, so tokens survive its restarts), bench/soak-upstream.js, and
// `tokengate serve` from dist/. Loopback only.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { TokenAdmin } from '../dist/admin/tokens.js'
import { makeKeys } from '../dist/token/keys.js'
import { freePort, redisServerArgs } from '../scripts/lib/ports.js'
import { chaosConfig, runChaos, seedChaos, startChaosUpstream } from './lib/chaos.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    'chaos-seconds': { type: 'string', default: '30' },
  },
})
const SECONDS = Number(values.seconds)
const CONCURRENCY = Number(values.concurrency)
/** A request sent this long after revoke() returned must be refused (the revocation-delay target). */
const REVOKE_GRACE_MS = 50
const root = join(import.meta.dirname, '..')
const dir = await mkdtemp(join(tmpdir(), 'tokengate-soak-'))
const children = new Set()

/** @param {string} cmd @param {string[]} args */
function start(cmd, args) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  children.add(p)
  p.on('exit', () => children.delete(p))
  return p
}
/** @param {import('node:child_process').ChildProcess} p @param {NodeJS.Signals} signal */
async function stop(p, signal = 'SIGTERM') {
  if (p.exitCode !== null || p.signalCode !== null) return
  const exited = once(p, 'exit')
  p.kill(signal)
  await exited
}
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms))
/** @param {number} port */
async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      (e) => !String(e?.cause?.code).includes('ECONNREFUSED'),
    )
    if (ok) return
    await sleep(25)
  }
  throw new Error(`nothing listens on ${port}`)
}

// Redis with an append-only file fsynced on every write: a restart keeps every token.
const redisPort = await freePort()
const redisArgs = [
  ...redisServerArgs(redisPort),
  '--appendonly',
  'yes',
  '--appendfsync',
  'always',
  '--dir',
  dir,
]
let redisProc = start('redis-server', redisArgs)
const upstreamPort = await freePort()
let upstreamProc = start(process.execPath, [join(root, 'bench', 'soak-upstream.js'), String(upstreamPort)])
await waitPort(upstreamPort)

const redis = new Redis({ port: redisPort, host: '127.0.0.1', maxRetriesPerRequest: 1 })
redis.on('error', () => {})
await redis.ping()
const admin = new TokenAdmin(redis, makeKeys('tg:'), {
  secretPrefix: 'tg_',
  expiredGrace: 60_000,
  actor: { name: 'soak' },
})

/** @type {{ token: string, id: string, album: string, query: string, revokedAt: number }[]} */
const tokens = []
for (let a = 0; a < 20; a++) {
  for (let i = 0; i < 10; i++) {
    const c = await admin.create({ kind: 'album', album: `A${a}`, perms: 'read', expiresIn: '1h' })
    tokens.push({ token: c.token, id: c.id, album: `A${a}`, query: '', revokedAt: 0 })
  }
}
for (let u = 0; u < 20; u++) {
  const c = await admin.create({ kind: 'user', user: `u${u}`, expiresIn: '1h' })
  for (const a of [u % 20, (u + 7) % 20]) await admin.addMember(`A${a}`, `u${u}`)
  for (const a of [u % 20, (u + 7) % 20])
    tokens.push({ token: c.token, id: c.id, album: `A${a}`, query: `?album=A${a}`, revokedAt: 0 })
}

const gatePort = await freePort()
const config = join(dir, 'tokengate.yaml')
await writeFile(
  config,
  `listen: { host: 127.0.0.1, port: ${gatePort} }
redis: { url: "redis://127.0.0.1:${redisPort}" }
metrics: { port: 0 }
workers: ${Number(values.workers)}
log: { level: warn }
cache: { ttl: 30s, negativeTtl: 5s }
forward: { connectTimeout: 1s, headersTimeout: 5s }
mounts:
  - path: /api
    upstream: http://127.0.0.1:${upstreamPort}/dicom-web
`,
)
const gate = start(process.execPath, [join(root, 'bin', 'tokengate.js'), 'serve', '--config', config])
await waitPort(gatePort)

const counts = {
  requests: 0,
  byStatus: /** @type {Record<string, number>} */ ({}),
  revokedPassed: 0,
  wrongAlbum: 0,
}
const events = /** @type {string[]} */ ([])
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })
const t0 = Date.now()
const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1)
const deadline = t0 + SECONDS * 1000

/** @param {typeof tokens[number]} t */
function once1(t) {
  const sentAt = Date.now()
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gatePort,
        path: `/api/studies${t.query}`,
        agent,
        headers: { authorization: `Bearer ${t.token}` },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c) => {
          body += c
        })
        res.on('end', () => {
          const status = String(res.statusCode)
          counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1
          if (res.statusCode === 200) {
            if (t.revokedAt && sentAt > t.revokedAt + REVOKE_GRACE_MS) counts.revokedPassed++
            const seen = JSON.parse(body)
            if (seen.album.length !== 1 || seen.album[0] !== t.album) counts.wrongAlbum++
          }
          resolve(undefined)
        })
        res.on('error', () => resolve(undefined))
      },
    )
    req.on('error', (err) => {
      const kind = `error ${/** @type {NodeJS.ErrnoException} */ (err).code ?? err.message}`
      counts.byStatus[kind] = (counts.byStatus[kind] ?? 0) + 1
      resolve(undefined)
    })
    req.end()
  })
}

async function loadLoop() {
  while (Date.now() < deadline) {
    const t = tokens[Math.floor(Math.random() * tokens.length)]
    if (!t) continue
    counts.requests++
    await once1(t)
  }
}

let revocations = 0
let revokeFailures = 0
async function revoker() {
  while (Date.now() < deadline) {
    await sleep(250)
    const live = tokens.filter((t) => !t.revokedAt)
    const t = live[Math.floor(Math.random() * live.length)]
    if (!t) continue
    try {
      await admin.revoke(t.id)
      const at = Date.now()
      for (const x of tokens) if (x.id === t.id) x.revokedAt = at
      revocations++
    } catch {
      revokeFailures++ // Redis down: try another later
    }
  }
}

/**
 * The chaos run: its own tokengate process (scoping: studies, one process so that its descriptors
 * are all counted) against the misbehaving upstream, on the soak's Redis.
 * @param {number} chaosSeconds
 */
async function chaosRun(chaosSeconds) {
  const upstream = await startChaosUpstream()
  const tokens = await seedChaos(redis, admin)
  const port = await freePort()
  const path = join(dir, 'chaos.yaml')
  await writeFile(
    path,
    chaosConfig({ redisUrl: `redis://127.0.0.1:${redisPort}`, upstreamUrl: upstream.url, port }),
  )
  const proc = start(process.execPath, [join(root, 'bin', 'tokengate.js'), 'serve', '--config', path])
  /** @type {string | null} */
  let exited = null
  proc.on('exit', (code, signal) => {
    exited = `code ${code}, signal ${signal}`
  })
  await waitPort(port)
  const { tally, fds } = await runChaos({
    upstream,
    pid: /** @type {number} */ (proc.pid),
    clients: {
      gateUrl: `http://127.0.0.1:${port}`,
      ...tokens,
      concurrency: CONCURRENCY,
    },
    seconds: chaosSeconds,
    alive: () => exited === null,
    fdTimeoutMs: 30_000,
  })
  const exitedDuring = exited // before our own SIGTERM below
  await stop(proc)
  await upstream.stop()
  return {
    tally,
    behaviours: upstream.behaviours,
    exited: exitedDuring,
    fds,
  }
}

async function chaos() {
  const at = async (/** @type {number} */ fraction) => {
    const wait = t0 + SECONDS * 1000 * fraction - Date.now()
    if (wait > 0) await sleep(wait)
  }
  await at(0.25)
  events.push(`${elapsed()} s: redis stopped`)
  await stop(redisProc)
  await sleep(2000)
  redisProc = start('redis-server', redisArgs)
  events.push(`${elapsed()} s: redis started`)
  await at(0.5)
  events.push(`${elapsed()} s: upstream killed (SIGKILL)`)
  await stop(upstreamProc, 'SIGKILL')
  await sleep(2000)
  upstreamProc = start(process.execPath, [join(root, 'bench', 'soak-upstream.js'), String(upstreamPort)])
  events.push(`${elapsed()} s: upstream started`)
  await at(0.75)
  events.push(`${elapsed()} s: redis stopped`)
  await stop(redisProc)
  await sleep(2000)
  redisProc = start('redis-server', redisArgs)
  events.push(`${elapsed()} s: redis started`)
}

await Promise.all([...Array.from({ length: CONCURRENCY }, loadLoop), revoker(), chaos()])
agent.destroy()
const soakSeconds = (Date.now() - t0) / 1000
const chaosReport =
  Number(values['chaos-seconds']) > 0 ? await chaosRun(Number(values['chaos-seconds'])) : null
redis.disconnect()
for (const p of [...children]) await stop(p, p === gate ? 'SIGTERM' : 'SIGTERM')
await rm(dir, { recursive: true, force: true })

const seconds = soakSeconds
console.log(
  `# soak: ${seconds.toFixed(0)} s, ${values.workers} workers, ${CONCURRENCY} concurrent clients, ${tokens.length} token/album pairs\n`,
)
for (const e of events) console.log(`- ${e}`)
console.log(`\n| outcome | requests |\n| --- | ---: |`)
for (const [k, v] of Object.entries(counts.byStatus).sort()) console.log(`| ${k} | ${v} |`)
console.log(`| **total** | **${counts.requests}** (${(counts.requests / seconds).toFixed(0)} req/s) |`)
console.log(`\nrevocations: ${revocations} done, ${revokeFailures} refused while Redis was down`)
console.log(
  `revoked tokens that passed (request sent > ${REVOKE_GRACE_MS} ms after revoke returned): ${counts.revokedPassed}`,
)
console.log(`answers for another album: ${counts.wrongAlbum}`)
let ok = counts.revokedPassed === 0 && counts.wrongAlbum === 0
if (chaosReport) {
  const { tally, behaviours, exited, fds } = chaosReport
  console.log(
    `\n# chaos: ${values['chaos-seconds']} s, ${CONCURRENCY} concurrent clients, upstream misbehaving at random\n`,
  )
  console.log('| upstream behaviour | answers |\n| --- | ---: |')
  for (const [k, v] of Object.entries(behaviours).sort()) console.log(`| ${k} | ${v} |`)
  console.log('\n| client outcome | requests |\n| --- | ---: |')
  for (const [k, v] of Object.entries(tally.byOutcome).sort()) console.log(`| ${k} | ${v} |`)
  console.log(`| **total** | **${tally.requests}** |`)
  console.log(`\nprocess exited: ${exited ?? 'no'}`)
  console.log(`complete answers that were wrong: ${tally.wrong} ${tally.violations.slice(0, 5).join('; ')}`)
  console.log(`open descriptors: ${fds.start} at start, ${fds.end} after`)
  ok = ok && exited === null && tally.wrong === 0 && fds.end <= fds.start
}
console.log(ok ? '\nPASS' : '\nFAIL')
process.exit(ok ? 0 : 1)
