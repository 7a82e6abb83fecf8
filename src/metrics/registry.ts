// Metrics: one prom-client Registry; every metric name, help text and label set is declared here
// and nowhere else. Labels are closed unions (mount prefix from config, method class, outcome,
// reason, cache result, status class) — never a token, a path, a user or a study UID — so the
// cardinality is bounded by the config. The per-request series are bound per label set up front
// (bound.ts), so recording a request is array indexing and additions, not label hashing.
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import type { Reason } from '../errors.js'
import type { CacheStats } from '../token/cache.js'
import { BoundCounter, BoundHistogram, type CounterSeries, type HistogramSeries } from './bound.js'

export type MethodClass = 'read' | 'write' | 'other'
const METHOD_CLASSES: readonly MethodClass[] = ['read', 'write', 'other']
const METHOD_INDEX: Readonly<Record<MethodClass, number>> = { read: 0, write: 1, other: 2 }

export function methodClass(method: string | undefined): MethodClass {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return 'read'
    case 'POST':
    case 'PUT':
    case 'PATCH':
    case 'DELETE':
      return 'write'
    default:
      return 'other'
  }
}

export type Outcome = 'allowed' | 'denied' | 'upstream_error' | 'error'

/** The `reason` label: coarse, stable, documented in the README (the access log has the fine reason). */
export type MetricReason =
  | 'none'
  | 'no_credential'
  | 'malformed'
  | 'unknown'
  | 'expired'
  | 'revoked'
  | 'disabled'
  | 'insufficient_scope'
  | 'not_found'
  | 'store_unavailable'
  | 'not_acceptable'
  | 'refused'
  | 'reset'
  | 'bad_response'
  | 'tls'
  | 'timeout'
  | 'rate_limited'
  | 'bug'

/** Every internal reason (and `ok`) → outcome and metric reason. A new reason fails to compile until mapped. */
const OUTCOME_OF: Readonly<Record<Reason | 'ok', readonly [Outcome, MetricReason]>> = {
  ok: ['allowed', 'none'],
  no_mount: ['denied', 'not_found'],
  no_rule: ['denied', 'not_found'],
  bad_path: ['denied', 'malformed'],
  conflicting_scope: ['denied', 'malformed'],
  bad_query: ['denied', 'malformed'],
  bad_multipart: ['denied', 'malformed'],
  bad_dicom: ['denied', 'malformed'],
  dicom_header_too_large: ['denied', 'malformed'],
  foreign_study: ['denied', 'insufficient_scope'],
  upstream_not_found: ['denied', 'not_found'],
  body_not_allowed: ['denied', 'malformed'],
  bad_id: ['denied', 'malformed'],
  bad_original: ['denied', 'malformed'],
  two_originals: ['denied', 'malformed'],
  // The decision endpoint cannot carry these out: say so as the zip refusal does.
  split_search: ['denied', 'not_acceptable'],
  empty_search: ['denied', 'not_acceptable'],
  stow_record: ['denied', 'not_acceptable'],
  study_set_change: ['denied', 'not_acceptable'],
  archive_check: ['denied', 'not_acceptable'],
  needs_rewrite: ['denied', 'not_acceptable'],
  auth_failures: ['denied', 'rate_limited'],
  upload_too_slow: ['denied', 'timeout'],
  bad_scheme: ['denied', 'malformed'],
  bad_base64: ['denied', 'malformed'],
  empty_secret: ['denied', 'malformed'],
  bad_link: ['denied', 'malformed'],
  secret_in_query: ['denied', 'malformed'],
  two_credentials: ['denied', 'malformed'],
  reserved_spelling: ['denied', 'malformed'],
  repeated_param: ['denied', 'malformed'],
  query_separator: ['denied', 'malformed'],
  fragment: ['denied', 'malformed'],
  control_char: ['denied', 'malformed'],
  non_ascii: ['denied', 'malformed'],
  double_encoding: ['denied', 'malformed'],
  bad_escape: ['denied', 'malformed'],
  dot_segment: ['denied', 'malformed'],
  path_parameter: ['denied', 'malformed'],
  empty_segment: ['denied', 'malformed'],
  none: ['denied', 'no_credential'],
  unknown: ['denied', 'unknown'],
  bad_checksum: ['denied', 'unknown'],
  expired: ['denied', 'expired'],
  revoked: ['denied', 'revoked'],
  disabled: ['denied', 'disabled'],
  user_inactive: ['denied', 'disabled'],
  missing_perm: ['denied', 'insufficient_scope'],
  inbox_refused: ['denied', 'insufficient_scope'],
  study_level_only: ['denied', 'insufficient_scope'],
  wrong_kind: ['denied', 'insufficient_scope'],
  no_grant: ['denied', 'insufficient_scope'],
  attr_mismatch: ['denied', 'insufficient_scope'],
  bad_grants: ['denied', 'insufficient_scope'],
  album_not_allowed: ['denied', 'insufficient_scope'],
  not_album_member: ['denied', 'insufficient_scope'],
  study_not_in_scope: ['denied', 'insufficient_scope'],
  zip_unsupported: ['denied', 'not_acceptable'],
  redis_error: ['denied', 'store_unavailable'],
  redis_timeout: ['denied', 'store_unavailable'],
  econnrefused: ['upstream_error', 'refused'],
  econnreset: ['upstream_error', 'reset'],
  bad_response: ['upstream_error', 'bad_response'],
  tls: ['upstream_error', 'tls'],
  connect: ['upstream_error', 'timeout'],
  headers: ['upstream_error', 'timeout'],
  body: ['upstream_error', 'timeout'],
  bad_body: ['denied', 'malformed'],
  bad_input: ['denied', 'malformed'],
  expiry_too_long: ['denied', 'malformed'],
  cannot_mint: ['denied', 'insufficient_scope'],
  perms_too_wide: ['denied', 'insufficient_scope'],
  not_own_token: ['denied', 'insufficient_scope'],
  body_too_large: ['denied', 'malformed'],
  bad_form: ['denied', 'malformed'],
  grant_type_unsupported: ['denied', 'malformed'],
  grant_unknown: ['denied', 'unknown'],
  grant_expired: ['denied', 'expired'],
  grant_revoked: ['denied', 'revoked'],
  grant_reused: ['denied', 'revoked'],
  grant_refused: ['denied', 'disabled'],
  client_mismatch: ['denied', 'unknown'],
  bug: ['error', 'bug'],
}
const OUTCOME_KEYS = Object.keys(OUTCOME_OF) as (Reason | 'ok')[]
const OUTCOME_INDEX = new Map(OUTCOME_KEYS.map((k, i) => [k, i]))

/** Sub-millisecond auth decisions up to a slow Redis. */
const AUTH_BUCKETS = [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1]
/** From a fast JSON answer to a slow archive. */
const UPSTREAM_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** Up to multi-minute multi-GB downloads. */
const TOTAL_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900]

export type CacheResult = 'hit' | 'miss' | 'none'

/** One request, as the pipeline saw it (its finally block fills this once). */
export interface RequestObservation {
  /** Index into the mounts given to setMounts(), or -1 when no mount matched. */
  mount: number
  method: string | undefined
  reason: Reason | 'ok'
  /** Whether the token came from the cache; `none` when no lookup was made. */
  cache: CacheResult
  authSeconds: number
  /** The upstream's status, 0 when the upstream was not reached. */
  upstreamStatus: number
  upstreamHeadersSeconds: number
  totalSeconds: number
  bytesIn: number
  bytesOut: number
}

export class GateMetrics {
  readonly registry = new Registry()
  /** Requests being handled now: a plain number on the hot path, read at scrape time. */
  inflight = 0
  private readonly requests: BoundCounter
  private readonly upstreamResponses: BoundCounter
  private readonly authDuration: BoundHistogram
  private readonly upstreamDuration: BoundHistogram
  private readonly totalDuration: BoundHistogram
  private readonly bytes: BoundCounter
  private readonly redisErrors: Counter
  private readonly redisReconnects: Counter
  private readonly reloads: Counter
  /** [mount + 1][method class][outcome key] → counter child; mount -1 is "none". */
  private requestChildren: CounterSeries[][][] = []
  private upstreamChildren: CounterSeries[][] = []
  private upstreamTimers: HistogramSeries[] = []
  private totalTimers: HistogramSeries[][] = []
  private readonly authTimers: Record<CacheResult, HistogramSeries>
  private readonly bytesIn: CounterSeries
  private readonly bytesOut: CounterSeries

  constructor(opts: { defaultMetrics?: boolean; version?: string } = {}) {
    const registers = [this.registry]
    this.requests = new BoundCounter(
      'tokengate_requests_total',
      'Requests by mount, method class (read|write|other), outcome (allowed|denied|upstream_error|error) and reason.',
      this.registry,
    )
    this.upstreamResponses = new BoundCounter(
      'tokengate_upstream_responses_total',
      'Upstream responses by mount and status class (1xx..5xx).',
      this.registry,
    )
    this.authDuration = new BoundHistogram(
      'tokengate_auth_duration_seconds',
      'Time from request start to the allow/deny decision; cache=hit|miss (token cache), none (no lookup).',
      AUTH_BUCKETS,
      this.registry,
    )
    this.upstreamDuration = new BoundHistogram(
      'tokengate_upstream_headers_duration_seconds',
      "Time from forwarding a request to the upstream's response headers.",
      UPSTREAM_BUCKETS,
      this.registry,
    )
    this.totalDuration = new BoundHistogram(
      'tokengate_request_duration_seconds',
      'Total time per request, until the last byte to the client.',
      TOTAL_BUCKETS,
      this.registry,
    )
    this.bytes = new BoundCounter(
      'tokengate_bytes_total',
      'Bytes through the public listener: in = from clients (requests), out = to clients (responses).',
      this.registry,
    )
    const self = this
    new Gauge({
      name: 'tokengate_inflight_requests',
      help: 'Requests being handled now.',
      registers,
      collect() {
        this.set(self.inflight)
      },
    })
    this.redisErrors = new Counter({
      name: 'tokengate_redis_errors_total',
      help: 'Redis errors by kind: connection (the link failed), command (a command failed or timed out).',
      labelNames: ['kind'],
      registers,
    })
    this.redisReconnects = new Counter({
      name: 'tokengate_redis_reconnects_total',
      help: 'Redis reconnection attempts.',
      registers,
    })
    this.reloads = new Counter({
      name: 'tokengate_config_reloads_total',
      help: 'SIGHUP config reloads by result (ok|invalid).',
      labelNames: ['result'],
      registers,
    })
    new Gauge({
      name: 'tokengate_build_info',
      help: 'Always 1; the version label says which tokengate runs.',
      labelNames: ['version'],
      registers,
    }).set({ version: opts.version ?? 'unknown' }, 1)
    this.authTimers = {
      hit: this.authDuration.labels({ cache: 'hit' }),
      miss: this.authDuration.labels({ cache: 'miss' }),
      none: this.authDuration.labels({ cache: 'none' }),
    }
    this.bytesIn = this.bytes.labels({ direction: 'in' })
    this.bytesOut = this.bytes.labels({ direction: 'out' })
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'tokengate_' })
      // prom-client exports these three as gauges named *_total, which promtool rejects; the
      // per-type gauges (tokengate_nodejs_active_handles etc.) carry the same information.
      for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total'])
        this.registry.removeSingleMetric(`tokengate_nodejs_${name}`)
    }
    this.setMounts([])
  }

  /** (Re)bind per-mount label sets; called at start and on reload. Index i is mounts[i]. */
  setMounts(prefixes: readonly string[]): void {
    const labels = ['none', ...prefixes.map((p) => p || '/')]
    this.requestChildren = labels.map((mount) =>
      METHOD_CLASSES.map((method) =>
        OUTCOME_KEYS.map((key) => {
          const [outcome, reason] = OUTCOME_OF[key]
          return this.requests.labels({ mount, method, outcome, reason })
        }),
      ),
    )
    this.upstreamChildren = labels.map((mount) =>
      ['1xx', '2xx', '3xx', '4xx', '5xx'].map((cls) =>
        this.upstreamResponses.labels({ mount, status_class: cls }),
      ),
    )
    this.upstreamTimers = labels.map((mount) => this.upstreamDuration.labels({ mount }))
    this.totalTimers = labels.map((mount) =>
      (['allowed', 'denied', 'upstream_error', 'error'] as const).map((o) =>
        this.totalDuration.labels({ mount, outcome: o }),
      ),
    )
  }

  /** Record one finished request: the only per-request metric call (from server/pipeline.ts). */
  observe(o: RequestObservation): void {
    const m = o.mount + 1
    const key = OUTCOME_INDEX.get(o.reason) ?? OUTCOME_INDEX.get('bug')!
    this.requestChildren[m]?.[METHOD_INDEX[methodClass(o.method)]]?.[key]?.inc()
    this.authTimers[o.cache].observe(o.authSeconds)
    if (o.upstreamStatus > 0) {
      this.upstreamChildren[m]?.[Math.min(Math.max(Math.floor(o.upstreamStatus / 100), 1), 5) - 1]?.inc()
      this.upstreamTimers[m]?.observe(o.upstreamHeadersSeconds)
    }
    const outcome = OUTCOME_OF[OUTCOME_KEYS[key] as Reason | 'ok'][0]
    const oi = outcome === 'allowed' ? 0 : outcome === 'denied' ? 1 : outcome === 'upstream_error' ? 2 : 3
    this.totalTimers[m]?.[oi]?.observe(o.totalSeconds)
    if (o.bytesIn > 0) this.bytesIn.inc(o.bytesIn)
    if (o.bytesOut > 0) this.bytesOut.inc(o.bytesOut)
  }

  redisError(kind: 'connection' | 'command'): void {
    this.redisErrors.inc({ kind })
  }

  redisReconnect(): void {
    this.redisReconnects.inc()
  }

  reloaded(ok: boolean): void {
    this.reloads.inc({ result: ok ? 'ok' : 'invalid' })
  }

  /** Export the token cache's counters (read at scrape time: the hot path only bumps numbers). */
  bindCache(current: () => { stats: CacheStats; size(): number }): void {
    const registers = [this.registry]
    const fromStats = (name: string, help: string, field: keyof CacheStats) => {
      let seen = 0
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = current().stats[field]
          if (now > seen) this.inc(now - seen)
          seen = now
        },
      })
    }
    fromStats('tokengate_token_cache_hits_total', 'Token lookups answered from the cache.', 'hits')
    fromStats(
      'tokengate_token_cache_negative_hits_total',
      'Lookups of unknown tokens answered from the negative cache.',
      'negativeHits',
    )
    fromStats('tokengate_token_cache_misses_total', 'Token lookups that went to Redis.', 'misses')
    fromStats('tokengate_token_cache_evictions_total', 'Cache entries dropped to make room.', 'evictions')
    fromStats(
      'tokengate_token_cache_outage_hits_total',
      'Tokens served from the cache because Redis failed (past cache.ttl only with cache.staleIfError).',
      'outageHits',
    )
    fromStats(
      'tokengate_invalidations_received_total',
      'Invalidation messages (revoke, disable, membership…) applied to the cache.',
      'invalidations',
    )
    new Gauge({
      name: 'tokengate_token_cache_entries',
      help: 'Token records (known and unknown) held in the cache.',
      registers,
      collect() {
        this.set(current().size())
      },
    })
  }

  /** Sockets the forwarder holds to upstreams (read at scrape time). */
  bindUpstreamSockets(counts: () => { active: number; idle: number }): void {
    new Gauge({
      name: 'tokengate_upstream_sockets',
      help: 'Sockets to upstreams by state (active|idle).',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const c = counts()
        this.set({ state: 'active' }, c.active)
        this.set({ state: 'idle' }, c.idle)
      },
    })
  }
}
