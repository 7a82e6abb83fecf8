// `npm run bench`: tokengate beside its baselines in one run on one machine (issue 5, DESIGN §8).
// Starts every server itself on free loopback ports (pinned to the last core, the load generator
// to core 0), primes the token caches, warms up, then runs the configurations alternately
// (A B C … / B C … A / …) for several rounds and reports medians: a Markdown table on stdout and
// the full result as JSON in bench/results/ (latest.json is the last full run). Never part of
// `npm test`. `node bench/run.js --help` lists the options.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { selfSignedCert } from './lib/certs.js'
import { admin as adminModule, keys as keysModule, secret } from './lib/dist.js'
import { runLoad } from './lib/load.js'
import { NGINX } from './lib/nginx.js'
import { cores, hasTaskset, LOAD_CORE, loadAverage, pinSelf, SERVER_CORE } from './lib/proc.js'
import { latencyTable, loadTable, targetLines, transferTable } from './lib/report.js'
import { measureRevocations } from './lib/revocation.js'
import { scenarios } from './lib/scenarios.js'
import { Stack } from './lib/stack.js'
import { median, quantile } from './lib/stats.js'
import { evaluateTargets } from './lib/targets.js'
import { runTransfers } from './lib/transfer.js'

const HELP = `usage: npm run bench -- [options]
  --quick             development run: 1 s runs, 1,000 tokens, 64 MB transfers, 100 revocations
  --duration S        seconds per measured run (default 5)
  --warmup S          seconds of warm-up per configuration (default 2)
  --rounds N          alternating rounds, medians over them (default 3, at least 3 for the table)
  --connections C     autocannon connections (default 10), no pipelining
  --streams N         concurrent streams on the one connection of the HTTP/2 rows (default 100)
  --rate R            requests/s of the moderate-load latency pass (default 1000)
  --tokens N          distinct tokens in the rotations (default 10000)
  --big-mb M          size of the large download/upload (default 1024)
  --revocations N     revocations measured across two replicas (default 1000)
  --only REGEX        only configurations whose id matches (e.g. 'direct|hit|auth-off')
  --skip LIST         phases to skip: load,latency,transfer,revocation
  --baseline-build D  also run the cache-hit and cache-miss rows and the large transfers on the
                      tokengate built in checkout D (its dist/ built): "before and after" a change
                      in the same run`

const { values: a } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string' },
    streams: { type: 'string' },
    rate: { type: 'string' },
    tokens: { type: 'string' },
    'big-mb': { type: 'string' },
    revocations: { type: 'string' },
    only: { type: 'string' },
    skip: { type: 'string', default: '' },
    'baseline-build': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (a.help) {
  console.log(HELP)
  process.exit(0)
}
const num = (/** @type {string | undefined} */ v, /** @type {number} */ full, /** @type {number} */ quick) =>
  v !== undefined ? Number(v) : a.quick ? quick : full
const opts = {
  quick: a.quick,
  duration: num(a.duration, 5, 1),
  warmup: num(a.warmup, 2, 0.5),
  rounds: num(a.rounds, 3, 3),
  connections: num(a.connections, 10, 10),
  streams: num(a.streams, 100, 100),
  rate: num(a.rate, 1000, 1000),
  tokens: num(a.tokens, 10_000, 1000),
  unknownTokens: a.quick ? 1000 : 5000,
  bigMb: num(a['big-mb'], 1024, 64),
  revocations: num(a.revocations, 1000, 100),
  only: a.only ? new RegExp(a.only) : null,
  skip: new Set(a.skip.split(',').filter(Boolean)),
  negativeTtlMs: 5000,
}

const log = (/** @type {string} */ msg) => process.stderr.write(`${msg}\n`)
const pinned = pinSelf()
const loads = [loadAverage()]
const loadTimer = setInterval(() => loads.push(loadAverage()), 10_000)
const started = new Date()
const dir = await mkdtemp(join(tmpdir(), 'tokengate-bench-'))
const stack = new Stack(dir)
let redisClient = /** @type {Redis | null} */ (null)
const cleanup = async () => {
  clearInterval(loadTimer)
  redisClient?.disconnect()
  await stack.stop()
  await rm(dir, { recursive: true, force: true })
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)))

/**
 * Mint tokens through TokenAdmin (as the CLI does), a few hundred at a time.
 * @template T
 * @param {number} n
 * @param {(i: number) => Promise<T>} make
 */
async function inBatches(n, make) {
  /** @type {T[]} */
  const out = []
  for (let i = 0; i < n; i += 250) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(250, n - i) }, (_, j) => make(i + j)))))
  }
  return out
}

/** @type {Record<string, unknown>} */
const result = {
  started: started.toISOString(),
  options: { ...opts, only: a.only ?? null, skip: [...opts.skip] },
}
try {
  log(`bench: starting servers in ${dir}`)
  const upstream = await stack.upstream()
  const redis = await stack.redis()
  const redisUrl = `redis://127.0.0.1:${redis.port}`
  redisClient = new Redis(redisUrl)
  const client = redisClient
  const tokenAdmin = new adminModule.TokenAdmin(client, keysModule.makeKeys('tg:'), {
    secretPrefix: 'tg_',
    expiredGrace: 60_000,
  })
  log(`bench: creating ${opts.tokens} album, ${opts.tokens} user and ${opts.tokens} api tokens`)
  const album = await inBatches(opts.tokens, () =>
    tokenAdmin.create({ kind: 'album', album: 'bench', perms: 'read', expiresIn: '1d' }),
  )
  const user = await inBatches(opts.tokens, async (i) => {
    const created = await tokenAdmin.create({ kind: 'user', user: `u${i}`, expiresIn: '1d' })
    await tokenAdmin.addMember('bench', `u${i}`)
    return created
  })
  // Five grants each, the one that covers the request last (the decision scans all five).
  const api = await inBatches(opts.tokens, (i) =>
    tokenAdmin.create({
      kind: 'api',
      grants: [
        'bucket:*:ReadBucket',
        'device:*:ListDevices',
        `sensor:s${i}:Read`,
        `device:dev${i}:AccessDeviceResources`,
        `device:dev${i}:GetDeviceStats,DeleteDevice`,
      ],
      expiresIn: '1d',
    }),
  )
  const writer = await tokenAdmin.create({
    kind: 'album',
    album: 'bench',
    perms: 'read,write',
    expiresIn: '1d',
  })
  const unknown = Array.from({ length: opts.unknownTokens }, () => secret.mintSecret('tg_'))

  const gateOpts = { upstream: upstream.url, redisUrl }
  const tokenService = await stack.tokenService(redisUrl)
  const quiet = await stack.tokengate('gate-quiet', { ...gateOpts, log: 'warn' })
  const tls = selfSignedCert(join(dir, 'tls'))
  /** @type {Record<string, import('./lib/stack.js').Listening | null>} */
  const servers = {
    httpProxy: await stack.httpProxyPass(upstream.url),
    undici: await stack.undiciPass(upstream.url),
    tokenService,
    nginxProxy: await stack.nginx('nginx-proxy', upstream.port),
    nginxAuth: await stack.nginx('nginx-auth', upstream.port, tokenService.port),
    gate: await stack.tokengate('gate', { ...gateOpts, iot: true }),
    quiet,
    // The shipped examples/nginx template: auth_request to the quiet gate's decision endpoint.
    nginxDecide: await stack.nginx('nginx-decide', upstream.port, undefined, { tokengatePort: quiet.port }),
    // Issue 17: TLS and HTTP/2 in front of the same upstream.
    gateTls: await stack.tokengate('gate-tls', { ...gateOpts, tls }),
    gateH2: await stack.tokengate('gate-h2', { ...gateOpts, tls, http2: true }),
    nginxTls: await stack.nginx('nginx-tls', upstream.port, undefined, { tls }),
    nginxAuthTls: await stack.nginx('nginx-auth-tls', upstream.port, tokenService.port, { tls }),
    miss: await stack.tokengate('gate-miss', { ...gateOpts, cache: '{ max: 0 }' }),
    authOff: await stack.authOff('auth-off', gateOpts),
    // The baseline's `last used` is written once an hour, i.e. never during the run: builds before
    // 59a3784 wrote it with one Redis call per token, ~1 s of CPU per flush of 10,000 tokens, which
    // landed in whichever current row was running (Redis's CPU counts in every row that uses it).
    before: a['baseline-build']
      ? await stack.tokengate('gate-before', {
          ...gateOpts,
          root: a['baseline-build'],
          lastUsedInterval: '1h',
        })
      : null,
    missBefore: a['baseline-build']
      ? await stack.tokengate('gate-miss-before', {
          ...gateOpts,
          cache: '{ max: 0 }',
          root: a['baseline-build'],
          lastUsedInterval: '1h',
        })
      : null,
  }
  // A lookup of an unknown token is one HMGET of its record (inside the lookup script; an older
  // build's script did HGETALL): the flood row counts Redis lookups by these.
  const lookupCalls = async () => {
    const stats = await client.info('commandstats')
    const calls = (/** @type {string} */ c) =>
      Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
    return calls('hmget') + calls('hgetall')
  }
  const all = scenarios({
    upstream,
    redis,
    servers,
    tokens: {
      album: album.map((t) => t.token),
      user: user.map((t) => t.token),
      unknown,
      api: api.map((t) => t.token),
    },
    redisLookups: lookupCalls,
    negativeTtlMs: opts.negativeTtlMs,
    h2Streams: opts.streams,
  })
  const list = opts.only ? all.filter((s) => opts.only?.test(s.id)) : all
  const rows = list.map(({ id, label, kind, expect }) => ({ id, label, kind, expect }))
  /**
   * One load run against a configuration (autocannon, or HTTP/2 for a row with streams).
   * @param {(typeof list)[number]} s
   * @param {{ seconds?: number, amount?: number, rate?: number }} how
   */
  const load = (s, how) =>
    runLoad({
      connections: opts.connections,
      upstreamPid: upstream.pid,
      url: s.url,
      gen: s.gen,
      pids: s.pids,
      streams: s.streams,
      ...how,
    })
  /** @type {Record<string, any[]>} */
  const runs = {}
  /** @type {Record<string, any[]>} */
  const latencyRuns = {}

  if (!opts.skip.has('load') || !opts.skip.has('latency')) {
    log('bench: priming token caches and warming up')
    for (const s of list) {
      if (s.kind === 'tokengate' && !s.id.startsWith('flood') && !s.id.startsWith('miss'))
        await load(s, { amount: opts.tokens })
      await load(s, { seconds: opts.warmup })
    }
  }

  /**
   * @param {Record<string, any[]>} into
   * @param {typeof list} which
   * @param {number} [rate]
   */
  const rounds = async (into, which, rate) => {
    for (let r = 0; r < opts.rounds; r++) {
      // Alternate: every round runs every configuration once, starting one further along.
      const order = [...which.slice(r % which.length), ...which.slice(0, r % which.length)]
      for (const s of order) {
        await s.before?.()
        const res = await load(s, { seconds: opts.duration, rate })
        const extra = (await s.after?.()) ?? {}
        into[s.id] = [...(into[s.id] ?? []), { round: r, ...res, ...extra }]
        log(
          `  r${r + 1} ${s.id.padEnd(22)} ${Math.round(res.rps).toString().padStart(6)} req/s  p99 ${res.p99.toFixed(2)} ms  ${Math.round(res.cpuUs)} µs/req`,
        )
      }
    }
  }
  if (!opts.skip.has('load')) {
    log(
      `bench: ${opts.rounds} rounds × ${list.length} configurations × ${opts.duration} s, -c ${opts.connections}`,
    )
    await rounds(runs, list)
  }
  if (!opts.skip.has('latency')) {
    const which = list.filter((s) => s.latency)
    log(`bench: latency at ${opts.rate} req/s: ${opts.rounds} rounds × ${which.length} configurations`)
    await rounds(latencyRuns, which, opts.rate)
  }
  /** @param {any[]} rs */
  const med = (rs) => ({
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    cpuUs: median(rs.map((r) => r.cpuUs)),
    upstreamCpuUs: median(rs.map((r) => r.upstreamCpuUs)),
    statuses: rs.reduce((acc, r) => {
      for (const [k, v] of Object.entries(r.statuses)) acc[k] = (acc[k] ?? 0) + v
      return acc
    }, {}),
    errors: rs.reduce((n, r) => n + r.errors, 0),
  })
  const medians = Object.fromEntries(Object.entries(runs).map(([id, rs]) => [id, med(rs)]))
  const latencyMedians = Object.fromEntries(Object.entries(latencyRuns).map(([id, rs]) => [id, med(rs)]))
  const flood = (runs.flood ?? []).map((r) => ({
    seconds: r.seconds,
    requests: r.requests,
    redisLookups: r.redisLookups,
    distinct: unknown.length,
    allowed: unknown.length * (Math.floor((r.seconds * 1000) / opts.negativeTtlMs) + 1),
  }))

  /** @type {[string, import('./lib/stack.js').Listening | null | undefined, string][]} */
  const bigVia = [
    ['nginx proxy_pass', servers.nginxProxy, '/dicom-web'],
    ['tokengate', servers.gate, '/api/studies/1'],
    ['tokengate (baseline build)', servers.before, '/api/studies/1'],
  ]
  const transfers = opts.skip.has('transfer')
    ? { runs: {}, medians: {} }
    : await runTransfers({
        bytes: opts.bigMb * 1048576,
        rounds: opts.rounds,
        headers: { authorization: `Bearer ${writer.token}` },
        upstreamPid: upstream.pid,
        targets: [
          { name: 'direct', url: upstream.url, prefix: '', pid: upstream.pid },
          ...bigVia.flatMap(([name, server, prefix]) =>
            server ? [{ name, url: server.url, prefix, pid: server.pid }] : [],
          ),
        ],
        log,
      })
  const transferMedians = transfers.medians

  /** @type {{ count: number, p50: number, p99: number, max: number, servedAfterRevoke: number } | null} */
  let revocation = null
  if (!opts.skip.has('revocation')) {
    log(`bench: revocation delay over ${opts.revocations} revocations, two replicas`)
    const replicas = [
      await stack.tokengate('replica-a', { ...gateOpts, log: 'warn' }),
      await stack.tokengate('replica-b', { ...gateOpts, log: 'warn' }),
    ]
    const doomed = await inBatches(opts.revocations, () =>
      tokenAdmin.create({ kind: 'album', album: 'bench', perms: 'read', expiresIn: '1d' }),
    )
    const { delaysMs, servedAfterRevoke } = await measureRevocations({
      replicas: replicas.map((r) => r.url),
      tokens: doomed,
      revoke: (id) => tokenAdmin.revoke(id),
    })
    revocation = {
      count: delaysMs.length,
      p50: quantile(delaysMs, 0.5),
      p99: quantile(delaysMs, 0.99),
      max: Math.max(...delaysMs),
      servedAfterRevoke,
    }
    for (const r of replicas) await stack.stopOne(r)
  }

  const machine = {
    cores,
    pinned: pinned && hasTaskset ? { loadGenerator: LOAD_CORE, servers: SERVER_CORE } : null,
    node: process.version,
    nginx: NGINX ?? null,
    loadAverage: { start: loads[0], max: Math.max(...loads, loadAverage()), end: loadAverage() },
  }
  const targets = evaluateTargets({
    medians,
    latencyMedians,
    flood,
    negativeTtlMs: opts.negativeTtlMs,
    transfers: transferMedians,
    revocation,
  })
  Object.assign(result, {
    finished: new Date().toISOString(),
    machine,
    rows,
    medians,
    latencyMedians,
    flood,
    transfers: transferMedians,
    revocation,
    targets,
    runs,
    latencyRuns,
    transferRuns: transfers.runs,
  })

  const header = [
    `tokengate benchmark, ${started.toISOString()} — Node ${process.version}, ${cores} cores shared with the load generator` +
      (machine.pinned
        ? ` (autocannon on core ${LOAD_CORE}, every server on core ${SERVER_CORE}, taskset)`
        : ' (not pinned)') +
      `; load average ${machine.loadAverage.start} at start, ${machine.loadAverage.max} max.`,
    `autocannon -c ${opts.connections} -p 1, ${opts.duration} s runs, ${opts.rounds} alternating rounds, medians (HTTP/2 rows: node:http2, one connection, ${opts.streams} concurrent streams); ${opts.tokens.toLocaleString('en-US')} distinct tokens rotating; CPU µs/req = utime+stime of the serving processes (proxy, token service, Redis; not the upstream) ÷ answers.`,
  ]
  const md = [
    header.join('\n'),
    '',
    `### Throughput and cost (-c ${opts.connections}, as fast as it goes)`,
    '',
    loadTable(rows, medians),
    '',
    `### Latency at a moderate load (${opts.rate} req/s over ${opts.connections} connections)`,
    '',
    latencyTable(rows, latencyMedians),
    '',
    `### Large transfers (${opts.bigMb} MB, one at a time)`,
    '',
    transferTable(transferMedians, opts.bigMb),
    '',
    '### Targets (issues 5, 13, 16)',
    '',
    targetLines(targets),
    '',
  ].join('\n')
  result.markdown = md
  console.log(md)

  const out = join(import.meta.dirname, 'results')
  await mkdir(out, { recursive: true })
  const json = `${JSON.stringify(result, null, 2)}\n`
  const file = join(out, `${started.toISOString().replace(/[:.]/g, '-')}${opts.quick ? '-quick' : ''}.json`)
  await writeFile(file, json)
  if (!opts.quick && !opts.only && opts.skip.size === 0) await writeFile(join(out, 'latest.json'), json)
  log(`bench: results in ${file}`)
} finally {
  await cleanup()
}
