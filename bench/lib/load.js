// Load generation: one autocannon run (programmatic API, loopback, no pipelining) against one
// configuration, with the serving processes' CPU time read before and after. Latencies are
// recorded per response with sub-millisecond precision (autocannon's own histogram has 1 ms
// buckets, too coarse for "adds ≤ 0.5 ms"), and a request generator can vary the path and
// headers of every request (10,000 rotating tokens).
import { connect } from 'node:http2'
import autocannon from 'autocannon'
import { cpuMicros, processTree } from './proc.js'

/**
 * @typedef {{ method?: 'GET' | 'POST' | 'DELETE', path: string, headers?: Record<string, string>, body?: string }} RequestSpec
 * @typedef {(i: number) => RequestSpec} RequestGen  request number i → what to send
 */

/**
 * @typedef {object} RunResult
 * @property {number} requests      responses received in the measured window
 * @property {number} seconds
 * @property {number} rps
 * @property {number} p50           ms
 * @property {number} p99           ms
 * @property {number} cpuUs         µs of CPU per request, serving processes except the upstream
 * @property {number} upstreamCpuUs µs of CPU per request in the upstream
 * @property {Record<string, number>} statuses  status code → count
 * @property {number} errors        connection errors and timeouts
 */

/** Grow-on-demand Float64 store of latencies in ms. */
class Latencies {
  constructor() {
    this.values = new Float64Array(1 << 16)
    this.n = 0
  }
  /** @param {number} v */
  add(v) {
    if (this.n === this.values.length) {
      const next = new Float64Array(this.values.length * 2)
      next.set(this.values)
      this.values = next
    }
    this.values[this.n++] = v
  }
  /** @param {number[]} qs quantiles in [0, 1] */
  quantiles(qs) {
    const sorted = this.values.subarray(0, this.n).sort()
    return qs.map((q) =>
      this.n ? /** @type {number} */ (sorted[Math.min(this.n - 1, Math.floor(q * this.n))]) : Number.NaN,
    )
  }
}

/**
 * @typedef {object} LoadOptions
 * @property {string} url          base URL (http:// or https://127.0.0.1:port)
 * @property {RequestGen} gen
 * @property {number} [seconds]
 * @property {number} [amount]     stop after this many requests instead (priming caches)
 * @property {number} connections  HTTP/1.1 (autocannon) connections
 * @property {number} [streams]    HTTP/2 instead: one connection, this many concurrent streams
 * @property {number} [rate]       overall requests per second (0: as fast as it goes; HTTP/1.1 only)
 * @property {number[]} pids       serving processes (CPU counted)
 * @property {number} [upstreamPid]
 * @typedef {(status: number, ms: number) => void} OnResponse
 */

/**
 * @param {LoadOptions} opts
 * @returns {Promise<RunResult>}
 */
export async function runLoad(opts) {
  const latencies = new Latencies()
  /** @type {Record<string, number>} */
  const statuses = {}
  /** @type {OnResponse} */
  const onResponse = (status, ms) => {
    latencies.add(ms)
    statuses[status] = (statuses[status] ?? 0) + 1
  }
  const pids = opts.pids.flatMap(processTree)
  const upstreamPids = opts.upstreamPid ? processTree(opts.upstreamPid) : []
  const cpu0 = cpuMicros(pids)
  const up0 = cpuMicros(upstreamPids)
  const t0 = performance.now()
  const errors = opts.streams
    ? await h2Load(opts, opts.streams, onResponse)
    : await autocannonLoad(opts, onResponse)
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuMicros(pids) - cpu0
  const upstreamCpu = cpuMicros(upstreamPids) - up0
  const [p50, p99] = latencies.quantiles([0.5, 0.99])
  const requests = latencies.n
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50: /** @type {number} */ (p50),
    p99: /** @type {number} */ (p99),
    cpuUs: requests ? cpu / requests : Number.NaN,
    upstreamCpuUs: requests ? upstreamCpu / requests : Number.NaN,
    statuses,
    errors,
  }
}

/**
 * HTTP/1.1 (over TLS for an https:// URL; autocannon does not verify the certificate).
 * @param {LoadOptions} opts @param {OnResponse} onResponse
 * @returns {Promise<number>} connection errors and timeouts
 */
async function autocannonLoad(opts, onResponse) {
  let counter = 0
  // Without a callback autocannon returns its tracker (an EventEmitter) made thenable.
  const instance = /** @type {autocannon.Instance & Promise<autocannon.Result>} */ (
    /** @type {unknown} */ (
      autocannon({
        url: opts.url,
        connections: opts.connections,
        pipelining: 1,
        ...(opts.amount ? { amount: opts.amount } : { duration: opts.seconds }),
        ...(opts.rate ? { overallRate: opts.rate } : {}),
        timeout: 10,
        requests: [
          {
            /** @param {autocannon.Request} req */
            setupRequest: (req) => {
              const spec = opts.gen(counter++)
              return {
                ...req,
                method: spec.method ?? 'GET',
                path: spec.path,
                headers: spec.headers ?? {},
                body: spec.body,
              }
            },
          },
        ],
      })
    )
  )
  instance.on(
    'response',
    (
      /** @type {unknown} */ _client,
      /** @type {number} */ status,
      /** @type {number} */ _bytes,
      /** @type {number} */ ms,
    ) => onResponse(status, ms),
  )
  const result = await instance
  return (result.errors ?? 0) + (result.timeouts ?? 0)
}

/**
 * HTTP/2, the viewer-like load autocannon cannot make: one TLS connection (node:http2, the
 * certificate not verified) and `streams` requests in flight on it, each started as the previous
 * one on its lane ends. A session the server ends (GOAWAY) is replaced by a new one.
 * @param {LoadOptions} opts @param {number} streams @param {OnResponse} onResponse
 * @returns {Promise<number>} stream and session errors
 */
async function h2Load(opts, streams, onResponse) {
  if (opts.rate) throw new Error('a fixed rate is not supported over HTTP/2')
  const until = opts.amount ? Number.POSITIVE_INFINITY : performance.now() + (opts.seconds ?? 0) * 1000
  let started = 0
  let errors = 0
  /** @type {import('node:http2').ClientHttp2Session[]} */
  const sessions = []
  const open = () => {
    const last = sessions.at(-1)
    if (last && !last.closed && !last.destroyed) return last
    const s = connect(opts.url, { rejectUnauthorized: false, peerMaxConcurrentStreams: streams })
    s.on('error', () => errors++)
    // A GOAWAY: streams already on this session finish, new ones go to a new session.
    s.on('goaway', () => s.close())
    sessions.push(s)
    return s
  }
  const one = () =>
    /** @type {Promise<void>} */ (
      new Promise((resolve) => {
        const spec = opts.gen(started++)
        const t = performance.now()
        const empty = spec.body === undefined || spec.body.length === 0
        const stream = open().request(
          { ':method': spec.method ?? 'GET', ':path': spec.path, ...spec.headers },
          { endStream: empty },
        )
        let status = 0
        stream.on('response', (h) => {
          status = Number(h[':status'])
        })
        stream.on('error', () => {})
        stream.on('close', () => {
          if (status) onResponse(status, performance.now() - t)
          else errors++
          resolve()
        })
        stream.resume()
        if (!empty) stream.end(spec.body)
      })
    )
  const lane = async () => {
    while (performance.now() < until && (!opts.amount || started < opts.amount)) await one()
  }
  await Promise.all(Array.from({ length: streams }, lane))
  for (const s of sessions) s.close()
  return errors
}
