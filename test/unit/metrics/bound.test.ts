// The bound per-request series export exactly what prom-client's own Counter and Histogram export
// for the same events (text and JSON, series in first-use order), so /metrics, promtool and the
// workers' AggregatorRegistry see no difference.
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client'
import t from 'tap'
import { BoundCounter, BoundHistogram } from '../../../src/metrics/bound.js'

const BUCKETS = [0.001, 0.01, 0.1, 1]

function both() {
  const reference = new Registry()
  const bound = new Registry()
  const refCounter = new Counter({
    name: 'c_total',
    help: 'c',
    labelNames: ['mount', 'reason'],
    registers: [reference],
  })
  const refHistogram = new Histogram({
    name: 'h_seconds',
    help: 'h',
    labelNames: ['mount', 'outcome'],
    buckets: BUCKETS,
    registers: [reference],
  })
  const counter = new BoundCounter('c_total', 'c', bound)
  const histogram = new BoundHistogram('h_seconds', 'h', BUCKETS, bound)
  return { reference, bound, refCounter, refHistogram, counter, histogram }
}

t.test('the same events give the same exposition text and JSON', async (t) => {
  const m = both()
  // Bound before use in another order than first use: the export follows first use.
  const denied = m.counter.labels({ mount: '/api', reason: 'unknown' })
  const allowed = m.counter.labels({ mount: '/api', reason: 'none' })
  const slow = m.histogram.labels({ mount: '/api', outcome: 'allowed' })
  const fast = m.histogram.labels({ mount: '/', outcome: 'denied' })
  allowed.inc()
  m.refCounter.labels('/api', 'none').inc()
  denied.inc(3)
  m.refCounter.labels('/api', 'unknown').inc(3)
  for (const v of [0.0005, 0.001, 0.05, 2, 0.2]) {
    slow.observe(v)
    m.refHistogram.labels('/api', 'allowed').observe(v)
  }
  fast.observe(0.00001)
  m.refHistogram.labels('/', 'denied').observe(0.00001)
  t.equal(await m.bound.metrics(), await m.reference.metrics())
  // prom-client adds `exemplar: null` to each value; exemplars are not used here.
  const withoutExemplars = (json: unknown) =>
    JSON.parse(JSON.stringify(json, (k, v) => (k === 'exemplar' ? undefined : v)))
  t.same(
    withoutExemplars(await m.bound.getMetricsAsJSON()),
    withoutExemplars(await m.reference.getMetricsAsJSON()),
  )
})

t.test('a bound series nobody used is not exported; the same labels give the same series', async (t) => {
  const m = both()
  m.counter.labels({ mount: '/api', reason: 'none' })
  t.equal(await m.bound.metrics(), await m.reference.metrics())
  t.equal(m.counter.labels({ mount: '/x', reason: 'a' }), m.counter.labels({ mount: '/x', reason: 'a' }))
})

t.test('the workers aggregate bound series by summing, as prom-client metrics', async (t) => {
  const workers = [both(), both()]
  for (const [i, w] of workers.entries()) {
    w.counter.labels({ mount: '/api', reason: 'none' }).inc(i + 1)
    w.histogram.labels({ mount: '/api', outcome: 'allowed' }).observe(0.005 * (i + 1))
  }
  const summed = AggregatorRegistry.aggregate(
    await Promise.all(workers.map((w) => w.bound.getMetricsAsJSON())),
  )
  const text = await summed.metrics()
  t.match(text, 'c_total{mount="/api",reason="none"} 3')
  t.match(text, 'h_seconds_bucket{le="0.01",mount="/api",outcome="allowed"} 2')
  t.match(text, 'h_seconds_count{mount="/api",outcome="allowed"} 2')
})
