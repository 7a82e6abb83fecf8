// Metrics, the per-request series: a counter and a histogram whose label sets are bound once (at
// start and on reload) into plain objects, so recording a request is a few additions. prom-client's
// own `labels(...)` children re-validate and re-hash the label object on every inc()/observe()
// (about 3% of a cache-hit request's CPU in the profile, bench/README.md). These register in a
// prom-client Registry like its own metrics (name, help, type, get(), aggregator 'sum' for the
// workers' AggregatorRegistry) and export the same text, series in first-use order.
import type { Registry } from 'prom-client'

type Labels = Readonly<Record<string, string>>

interface ExportedValue {
  labels: Record<string, string | number>
  value: number
  metricName?: string
}

interface Exported {
  name: string
  help: string
  type: 'counter' | 'histogram'
  values: ExportedValue[]
  aggregator: 'sum'
}

/** One label set of a BoundCounter. */
export class CounterSeries {
  value = 0
  constructor(
    readonly labels: Labels,
    private readonly used: (s: CounterSeries) => void,
  ) {}

  inc(by = 1): void {
    if (this.value === 0) this.used(this)
    this.value += by
  }
}

/** One label set of a BoundHistogram: per-bucket counts (the last is +Inf), sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
    private readonly used: (s: HistogramSeries) => void,
  ) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    if (this.count === 0) this.used(this)
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > (bounds[i] as number)) i++
    this.counts[i] = (this.counts[i] as number) + 1
    this.sum += value
    this.count++
  }
}

abstract class Bound<S extends { labels: Labels }> {
  readonly aggregator = 'sum'
  private readonly byKey = new Map<string, S>()
  /** Series with at least one event, in the order of their first one (prom-client's order). */
  protected seen: S[] = []

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as never)
  }

  protected abstract make(labels: Labels): S

  /** The series for `labels`: the same object every time for the same label values. */
  labels(labels: Labels): S {
    const key = JSON.stringify(labels)
    let series = this.byKey.get(key)
    if (!series) {
      series = this.make(labels)
      this.byKey.set(key, series)
    }
    return series
  }

  protected readonly noteUsed = (s: S): void => {
    this.seen.push(s)
  }

  reset(): void {
    this.byKey.clear()
    this.seen = []
  }
}

export class BoundCounter extends Bound<CounterSeries> {
  readonly type = 'counter'

  protected make(labels: Labels): CounterSeries {
    return new CounterSeries(labels, this.noteUsed)
  }

  get(): Exported {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.seen.map((s) => ({ labels: { ...s.labels }, value: s.value })),
      aggregator: this.aggregator,
    }
  }
}

export class BoundHistogram extends Bound<HistogramSeries> {
  readonly type = 'histogram'

  constructor(
    name: string,
    help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, registry)
  }

  protected make(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.bounds, this.noteUsed)
  }

  get(): Exported {
    const values: ExportedValue[] = []
    const bucket = `${this.name}_bucket`
    for (const s of this.seen) {
      let cumulative = 0
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i] as number
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: bucket })
      })
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket })
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}
