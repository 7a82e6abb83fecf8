// Load generation: one autocannon run (programmatic API, loopback, no pipelining) against one
// configuration, with the serving processes' CPU time read before and after. Latencies are
// recorded per response with sub-millisecond precision (autocannon's own histogram has 1 ms
// buckets, too coarse for "adds ≤ 0.5 ms"), and a request generator can vary the path and
// headers of every request (10,000 rotating tokens).
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
 * @param {object} opts
 * @param {string} opts.url          base URL (http://127.0.0.1:port)
 * @param {RequestGen} opts.gen
 * @param {number} [opts.seconds]
 * @param {number} [opts.amount]     stop after this many requests instead (priming caches)
 * @param {number} opts.connections
 * @param {number} [opts.rate]       overall requests per second (0: as fast as it goes)
 * @param {number[]} opts.pids       serving processes (CPU counted)
 * @param {number} [opts.upstreamPid]
 * @returns {Promise<RunResult>}
 */
export async function runLoad(opts) {
  let counter = 0
  const latencies = new Latencies()
  /** @type {Record<string, number>} */
  const statuses = {}
  const pids = opts.pids.flatMap(processTree)
  const upstreamPids = opts.upstreamPid ? processTree(opts.upstreamPid) : []
  const cpu0 = cpuMicros(pids)
  const up0 = cpuMicros(upstreamPids)
  const t0 = performance.now()
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
    ) => {
      latencies.add(ms)
      statuses[status] = (statuses[status] ?? 0) + 1
    },
  )
  const result = await instance
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
    errors: (result.errors ?? 0) + (result.timeouts ?? 0),
  }
}
