// Large transfers: one download or upload of `bytes` through a configuration, with throughput and
// the peak RSS growth of the serving process sampled from /proc while the bytes flow.
import { request } from 'node:http'
import { cpuMicros, processTree, rssBytes } from './proc.js'
import { median } from './stats.js'

const CHUNK = Buffer.alloc(1024 * 1024, 0x42)

/**
 * @typedef {object} TransferResult
 * @property {number} mbPerS      MiB/s, from request start to the end of the response
 * @property {number} rssGrowthMb peak RSS minus RSS before, of the watched process (MiB)
 * @property {number} bytes       bytes that arrived (download) or were acknowledged (upload)
 * @property {number} cpuSPerGb   CPU seconds (utime + stime, every thread and child) of the watched
 *                                process per GiB moved
 * @property {number} upstreamCpuSPerGb  the same of `upstreamPid` (NaN without one)
 */

/**
 * @param {object} o
 * @param {string} o.url      base URL
 * @param {string} o.path
 * @param {'download' | 'upload'} o.direction
 * @param {number} o.bytes
 * @param {Record<string, string>} o.headers
 * @param {number} o.watchPid  process whose RSS and CPU are sampled
 * @param {number} [o.upstreamPid]  the upstream, whose CPU is reported beside (not when it is watchPid)
 * @returns {Promise<TransferResult>}
 */
export function transfer(o) {
  const watched = processTree(o.watchPid)
  const upstream = o.upstreamPid && o.upstreamPid !== o.watchPid ? [o.upstreamPid] : []
  const cpu0 = cpuMicros(watched)
  const upstreamCpu0 = upstream.length ? cpuMicros(upstream) : 0
  const base = rssBytes(o.watchPid)
  let peak = base
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes(o.watchPid))
  }, 10)
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const upload = o.direction === 'upload'
    const req = request(`${o.url}${o.path}`, {
      method: upload ? 'POST' : 'GET',
      agent: false,
      headers: {
        ...o.headers,
        ...(upload ? { 'content-type': 'application/octet-stream', 'content-length': String(o.bytes) } : {}),
      },
    })
    req.on('error', (err) => {
      clearInterval(timer)
      reject(err)
    })
    req.on('response', (res) => {
      let received = 0
      /** @type {Buffer[]} */
      const small = []
      res.on('data', (/** @type {Buffer} */ chunk) => {
        received += chunk.length
        if (upload) small.push(chunk)
      })
      res.on('end', () => {
        clearInterval(timer)
        const seconds = (performance.now() - t0) / 1000
        peak = Math.max(peak, rssBytes(o.watchPid))
        const bytes = upload ? Number(JSON.parse(Buffer.concat(small).toString()).bytes) : received
        if (res.statusCode !== 200 || bytes !== o.bytes)
          return reject(
            new Error(`${o.direction} via ${o.url}: status ${res.statusCode}, ${bytes} of ${o.bytes} bytes`),
          )
        const gib = o.bytes / 1073741824
        resolve({
          mbPerS: o.bytes / 1048576 / seconds,
          rssGrowthMb: (peak - base) / 1048576,
          bytes,
          cpuSPerGb: (cpuMicros(watched) - cpu0) / 1e6 / gib,
          upstreamCpuSPerGb: upstream.length ? (cpuMicros(upstream) - upstreamCpu0) / 1e6 / gib : Number.NaN,
        })
      })
    })
    if (!upload) return void req.end()
    let left = o.bytes
    const write = () => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length)
        left -= n
        if (!req.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n)))
          return void req.once('drain', write)
      }
      req.end()
    }
    write()
  })
}

/**
 * @typedef {{ mbPerS: number, rssGrowthMb: number, cpuSPerGb: number, upstreamCpuSPerGb: number }} TransferSummary
 * @typedef {{ download: TransferSummary, upload: TransferSummary }} TransferMedians
 */

/**
 * The large-transfer phase: every target downloads `/stream/<bytes>` and uploads `bytes` to
 * `/studies` (under its prefix; the upstream counts them away), one at a time, alternating over
 * `rounds`. Medians of throughput and CPU per GiB, worst RSS growth. `upstreamPid`: the upstream,
 * whose CPU per GiB is reported beside each proxy's.
 * @param {object} o
 * @param {number} o.bytes
 * @param {number} o.rounds
 * @param {Record<string, string>} o.headers
 * @param {{ name: string, url: string, prefix: string, pid: number }[]} o.targets
 * @param {(msg: string) => void} o.log
 * @param {number} [o.upstreamPid]
 */
export async function runTransfers(o) {
  /** @type {Record<string, { download: TransferResult[], upload: TransferResult[] }>} */
  const runs = {}
  o.log(
    `bench: ${o.bytes / 1048576} MB download and upload, ${o.rounds} rounds × ${o.targets.length} configurations`,
  )
  for (let r = 0; r < o.rounds; r++) {
    for (const t of o.targets) {
      const common = {
        url: t.url,
        bytes: o.bytes,
        headers: o.headers,
        watchPid: t.pid,
        upstreamPid: o.upstreamPid,
      }
      const d = await transfer({ ...common, path: `${t.prefix}/stream/${o.bytes}`, direction: 'download' })
      const u = await transfer({ ...common, path: `${t.prefix}/studies`, direction: 'upload' })
      const entry = runs[t.name] ?? { download: [], upload: [] }
      entry.download.push(d)
      entry.upload.push(u)
      runs[t.name] = entry
      o.log(
        `  r${r + 1} ${t.name.padEnd(24)} down ${Math.round(d.mbPerS)} MB/s (+${Math.round(d.rssGrowthMb)} MB, ${d.cpuSPerGb.toFixed(2)} CPU s/GB)  up ${Math.round(u.mbPerS)} MB/s (+${Math.round(u.rssGrowthMb)} MB, ${u.cpuSPerGb.toFixed(2)} CPU s/GB)`,
      )
    }
  }
  /** @param {TransferResult[]} xs */
  const summary = (xs) => ({
    mbPerS: median(xs.map((x) => x.mbPerS)),
    rssGrowthMb: Math.max(...xs.map((x) => x.rssGrowthMb)),
    cpuSPerGb: median(xs.map((x) => x.cpuSPerGb)),
    upstreamCpuSPerGb: median(xs.map((x) => x.upstreamCpuSPerGb)),
  })
  /** @type {Record<string, TransferMedians>} */
  const medians = {}
  for (const [name, t] of Object.entries(runs))
    medians[name] = { download: summary(t.download), upload: summary(t.upload) }
  return { runs, medians }
}
