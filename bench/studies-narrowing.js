// What `scoping: studies` narrowing costs on a 10,000-study album (issue 6). Self-contained: starts
// redis-server, Orthanc with its DICOMweb plugin and REAL_STUDIES synthetic studies, and two
// tokengate processes from dist/ (run `npx tsc -p tsconfig.build.json` first) on free ports — one
// `scoping: query` (the search goes to Orthanc as it is: the un-narrowed baseline), one
// `scoping: studies` — then measures the same QIDO study search with autocannon, a fixed number of
// requests each (bounded run), and prints latency, req/s and CPU per request of tokengate and of
// Orthanc (from /proc), each as a ratio to the un-narrowed baseline of the same run.
//
//   node bench/studies-narrowing.js            (about a minute on 2 cores)
//
// Rows: direct to Orthanc; through tokengate un-narrowed; narrowed to a small album holding all
// the real studies (one upstream search); narrowed to a 10,000-study album (the real studies plus
// synthetic UIDs: the list is split over ~36 upstream searches whose answers are merged).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startOrthanc } from '../scripts/lib/orthanc.js'
import { freePort, redisServerArgs } from '../scripts/lib/ports.js'

/**
 * @typedef {{ requests: { average: number, total: number }, latency: { p50: number, p99: number },
 *   non2xx: number, errors: number }} AutocannonResult
 */
// Loaded through require: autocannon ships no types (a devDependency of the project).
const autocannon = /** @type {(opts: object) => Promise<AutocannonResult>} */ (
  createRequire(import.meta.url)('autocannon')
)

const root = join(import.meta.dirname, '..')
const bin = join(root, 'bin', 'tokengate.js')
const REAL_STUDIES = 20
const ALBUM_SIZE = 10_000
const CONNECTIONS = 4

/** CPU milliseconds (user + system) a process has used, from /proc. @param {number} pid */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
}

/** @param {string[]} args @param {string} config */
async function cli(args, config) {
  const proc = spawn(process.execPath, [bin, ...args, '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  proc.stdout.on('data', (c) => {
    out += c
  })
  const [code] = await once(proc, 'exit')
  if (code !== 0) throw new Error(`tokengate ${args.join(' ')} exited ${code}`)
  return out
}

/** Start `tokengate serve`, resolve once it listens. @param {string} config */
async function serve(config) {
  const proc = spawn(process.execPath, [bin, 'serve', '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`tokengate did not start:\n${out}`)), 15_000)
    proc.stdout.on('data', (c) => {
      out += c
      if (out.includes('tokengate listening')) {
        clearTimeout(timer)
        resolve(undefined)
      }
    })
    proc.once('exit', () => reject(new Error(`tokengate exited:\n${out}`)))
  })
  proc.stdout.resume() // the access log: read and dropped
  return proc
}

/**
 * @param {string} url @param {Record<string, string>} headers @param {number} amount
 * @param {number[]} pids processes whose CPU is counted
 */
async function measure(url, headers, amount, pids) {
  // Warm-up (caches, keep-alive sockets, JIT), not counted.
  await autocannon({ url, headers, connections: CONNECTIONS, amount: Math.max(CONNECTIONS, amount / 10) })
  const before = pids.map(cpuMs)
  const result = await autocannon({ url, headers, connections: CONNECTIONS, amount })
  const cpu = pids.map((pid, i) => ((cpuMs(pid) - (before[i] ?? 0)) * 1000) / result.requests.total)
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpu,
    n: result.requests.total,
  }
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'tokengate-bench-'))
  /** @type {(() => Promise<unknown> | void)[]} */
  const cleanup = [() => rm(dir, { recursive: true, force: true })]
  try {
    const redisPort = await freePort()
    const redis = spawn('redis-server', redisServerArgs(redisPort), { stdio: 'ignore' })
    cleanup.push(() => {
      redis.kill()
    })
    const orthanc = await startOrthanc()
    cleanup.push(() => orthanc.stop())
    process.stderr.write(`creating ${REAL_STUDIES} studies in Orthanc…\n`)
    const real = []
    for (let i = 0; i < REAL_STUDIES; i++)
      real.push((await orthanc.createStudy({ patientId: `PB${i}` })).studyInstanceUID)

    /** @param {string} scoping @param {number} port */
    const config = async (scoping, port) => {
      const path = join(dir, `${scoping}.yaml`)
      await writeFile(
        path,
        `listen: { host: 127.0.0.1, port: ${port} }
redis: { url: "redis://127.0.0.1:${redisPort}" }
mounts: [{ path: /api, upstream: "${orthanc.dicomWebUrl}" }]
scoping: ${scoping}
`,
      )
      return path
    }
    const queryPort = await freePort()
    const studiesPort = await freePort()
    const queryConfig = await config('query', queryPort)
    const studiesConfig = await config('studies', studiesPort)

    // The 10,000-study album: the real studies spread among synthetic UIDs; a small one: the real ones.
    const synthetic = Array.from(
      { length: ALBUM_SIZE - REAL_STUDIES },
      (_, i) => `1.2.826.0.1.3680043.10.${i + 1}`,
    )
    const big = [...synthetic]
    real.forEach((uid, i) => {
      big.splice(Math.floor((i * big.length) / REAL_STUDIES), 0, uid)
    })
    const file = join(dir, 'big.txt')
    await writeFile(file, big.join('\n'))
    await cli(['album', 'import', 'big', file], studiesConfig)
    await cli(['album', 'add-study', 'small', ...real], studiesConfig)
    /** @param {string} album */
    const token = async (album) =>
      JSON.parse(
        await cli(
          [
            'token',
            'create',
            '--kind',
            'album',
            '--album',
            album,
            '--perms',
            'read',
            '--expires',
            '1h',
            '--json',
          ],
          studiesConfig,
        ),
      ).token

    const bigToken = await token('big')
    const smallToken = await token('small')
    const queryGate = await serve(queryConfig)
    cleanup.push(() => {
      queryGate.kill()
    })
    const studiesGate = await serve(studiesConfig)
    cleanup.push(() => {
      studiesGate.kill()
    })
    const orthancPid = /** @type {number} */ (orthanc.pid)
    const accept = { accept: 'application/dicom+json' }

    // The big album's answer must be the real studies: a benchmark of a wrong answer is worthless.
    const check = await fetch(`http://127.0.0.1:${studiesPort}/api/studies`, {
      headers: { authorization: `Bearer ${bigToken}` },
    })
    const got = /** @type {unknown[]} */ (await check.json()).length
    if (got !== REAL_STUDIES)
      throw new Error(`the 10,000-study album answered ${got} studies, expected ${REAL_STUDIES}`)

    process.stderr.write('measuring…\n')
    const rows = [
      ['direct to Orthanc', await measure(`${orthanc.dicomWebUrl}/studies`, accept, 400, [orthancPid])],
      [
        'tokengate, un-narrowed (scoping: query)',
        await measure(
          `http://127.0.0.1:${queryPort}/api/studies`,
          { ...accept, authorization: `Bearer ${smallToken}` },
          400,
          [queryGate.pid ?? 0, orthancPid],
        ),
      ],
      [
        `narrowed, ${REAL_STUDIES}-study album (1 search)`,
        await measure(
          `http://127.0.0.1:${studiesPort}/api/studies`,
          { ...accept, authorization: `Bearer ${smallToken}` },
          400,
          [studiesGate.pid ?? 0, orthancPid],
        ),
      ],
      [
        `narrowed, ${ALBUM_SIZE}-study album (split)`,
        await measure(
          `http://127.0.0.1:${studiesPort}/api/studies`,
          { ...accept, authorization: `Bearer ${bigToken}` },
          40,
          [studiesGate.pid ?? 0, orthancPid],
        ),
      ],
      [
        `narrowed, ${ALBUM_SIZE}-study album, limit=10`,
        await measure(
          `http://127.0.0.1:${studiesPort}/api/studies?limit=10`,
          { ...accept, authorization: `Bearer ${bigToken}` },
          40,
          [studiesGate.pid ?? 0, orthancPid],
        ),
      ],
    ]
    const base = /** @type {{ rps: number, p50: number, p99: number, cpu: number[] }} */ (rows[1]?.[1])
    const ratio = (/** @type {number} */ v, /** @type {number} */ b) => (b ? `${(v / b).toFixed(2)}×` : '-')
    const lines = [
      `QIDO GET /studies, ${REAL_STUDIES} matching studies, ${CONNECTIONS} connections; ratios to the un-narrowed row`,
      '',
      '| path | req/s | p50 ms | p99 ms | tokengate CPU µs/req | Orthanc CPU µs/req |',
      '| --- | --- | --- | --- | --- | --- |',
    ]
    for (const [name, r] of rows) {
      const m = /** @type {{ rps: number, p50: number, p99: number, cpu: number[] }} */ (r)
      const gateCpu = m.cpu.length === 2 ? (m.cpu[0] ?? 0) : null
      const orthancCpu = m.cpu.at(-1) ?? 0
      lines.push(
        `| ${name} | ${m.rps.toFixed(0)} (${ratio(m.rps, base.rps)}) | ${m.p50} (${ratio(m.p50, base.p50)}) | ${m.p99} (${ratio(m.p99, base.p99)}) | ${
          gateCpu === null ? '-' : `${gateCpu.toFixed(0)} (${ratio(gateCpu, base.cpu[0] ?? 0)})`
        } | ${orthancCpu.toFixed(0)} (${ratio(orthancCpu, base.cpu[1] ?? 0)}) |`,
      )
    }
    console.log(lines.join('\n'))
  } finally {
    for (const step of cleanup.reverse()) await step()
  }
}

await main()
