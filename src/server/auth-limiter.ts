// Server, around the pipeline: the failed-auth limiter. Refused credentials (unknown, expired,
// revoked, disabled, malformed) are counted per client address in fixed windows, shared by all
// replicas through Redis (one INCRBY + PEXPIRE per address per flush); past `maxFailures` the
// address gets 429 until the window ends. The hot path of a valid token pays one Map-size check:
// nothing is counted for it, and refusals are counted in memory and flushed in batches.
// Fail open for counting only: if Redis fails, the local count still cuts an address that alone
// passes the threshold here, and the requests themselves still fail closed in the token lookup.
import type { Cluster, Redis } from 'ioredis'
import type { Keys } from '../token/keys.js'
import { defineScript } from '../token/redis-script.js'

export interface AuthLimiterOptions {
  enabled: boolean
  maxFailures: number
  /** Milliseconds per window. */
  window: number
  /** Milliseconds between flushes to Redis (default 100). */
  flushInterval?: number
  onError?: (err: unknown) => void
}

export interface AuthLimiter {
  /** Seconds until `address` may try again, 0 if it may now. No I/O. */
  blockedFor(address: string, now: number): number
  /** Count one refused credential from `address` (in memory; flushed to Redis in batches). */
  refused(address: string, now: number): void
  /** Send the counts noted since the last flush; learn the shared totals. */
  flush(): Promise<void>
  close(): Promise<void>
}

// KEYS[1] = the window's counter, ARGV[1] = refusals to add, ARGV[2] = key lifetime (ms).
const COUNT = `local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n`

/** Addresses tracked per window before counts go straight to Redis (memory bound under a spray). */
const MAX_TRACKED = 50_000

/**
 * IPv6 clients usually own a whole /64: count them by it, or one host could spread over 2^64
 * addresses. IPv4 addresses count alone.
 */
export function limiterKey(address: string): string {
  if (!address.includes(':')) return address
  const [head = '', tail] = address.split('::', 2)
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups =
    tail === undefined ? h : [...h, ...new Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t]
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}

const OFF: AuthLimiter = {
  blockedFor: () => 0,
  refused() {},
  flush: async () => {},
  close: async () => {},
}

export function createAuthLimiter(redis: Redis | Cluster, keys: Keys, opts: AuthLimiterOptions): AuthLimiter {
  if (!opts.enabled) return OFF
  const { maxFailures, window } = opts
  // Under a spray of guesses from many addresses every flush sends one call per address: the
  // script goes by its SHA, not its text each time.
  const countFailures = defineScript<[key: string, n: string, lifetime: string], number>(
    redis,
    'tokengateCountFailures',
    { lua: COUNT, numberOfKeys: 1 },
  )
  let current = -1
  /** Refusals seen here in the current window, not yet sent. */
  let pending = new Map<string, number>()
  /** Best known total per address in the current window (Redis's last answer + what we added since). */
  const totals = new Map<string, number>()
  /** Address → end of the window it is cut for (ms). */
  const blocked = new Map<string, number>()

  function roll(now: number): number {
    const w = Math.floor(now / window)
    if (w !== current) {
      current = w
      pending = new Map()
      totals.clear()
      // Blocks end with their window; drop the past ones.
      for (const [addr, until] of blocked) if (until <= now) blocked.delete(addr)
    }
    return w
  }

  function block(addr: string, w: number): void {
    blocked.set(addr, (w + 1) * window)
  }

  async function flush(): Promise<void> {
    if (pending.size === 0) return
    const batch = pending
    const w = current
    pending = new Map()
    await Promise.all(
      [...batch].map(async ([addr, n]) => {
        try {
          const total = Number(await countFailures(keys.authFailures(w, addr), String(n), String(window * 2)))
          if (w !== current) return
          totals.set(addr, Math.max(total, totals.get(addr) ?? 0))
          if (total >= maxFailures) block(addr, w)
        } catch (err) {
          opts.onError?.(err) // fail open: the shared count is lost, the local one stands
        }
      }),
    )
  }

  const timer = setInterval(() => void flush(), opts.flushInterval ?? 100)
  timer.unref()

  return {
    blockedFor(address, now) {
      if (blocked.size === 0) return 0
      const until = blocked.get(limiterKey(address))
      if (until === undefined) return 0
      if (until <= now) {
        blocked.delete(limiterKey(address))
        return 0
      }
      return Math.ceil((until - now) / 1000)
    },
    refused(address, now) {
      const w = roll(now)
      const addr = limiterKey(address)
      const total = (totals.get(addr) ?? 0) + 1
      if (totals.size < MAX_TRACKED || totals.has(addr)) totals.set(addr, total)
      pending.set(addr, (pending.get(addr) ?? 0) + 1)
      if (total >= maxFailures) block(addr, w)
      if (pending.size >= MAX_TRACKED) void flush()
    },
    flush,
    async close() {
      clearInterval(timer)
      await flush()
    },
  }
}
