// Token lookup, bookkeeping: when each token was last used, written in batches. The hot path
// only notes the time in a Map (one entry per token, the latest use wins); every
// `tokens.lastUsedInterval` the notes are flushed as at most one Redis write per token. The
// write never recreates a record that has left Redis and never moves the time backwards (several
// replicas write the same field). Single-key commands only, so it works on Cluster.
import type { Cluster, Redis } from 'ioredis'
import type { Keys } from './keys.js'
import { LAST_USED_FIELD, type TokenHash } from './record.js'

// KEYS[1] = token record, ARGV[1] = field, ARGV[2] = milliseconds. Only if the record exists and
// holds an older time.
const RECORD_USE = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
if current >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`

export interface LastUsedRecorder {
  /** Note a use (cheap: a Map write). */
  seen(hash: TokenHash, at: number): void
  /** Write what was noted since the last flush. */
  flush(): Promise<void>
  /** Stop the timer and flush what is left. */
  close(): Promise<void>
}

export function recordLastUsed(
  redis: Redis | Cluster,
  keys: Keys,
  opts: { intervalMs: number; onError: (err: unknown) => void },
): LastUsedRecorder {
  let pending = new Map<TokenHash, number>()
  if (opts.intervalMs <= 0) {
    return { seen() {}, flush: async () => {}, close: async () => {} }
  }
  const flush = async () => {
    if (pending.size === 0) return
    const batch = pending
    pending = new Map()
    // ioredis pipelines these automatically per node; each is one small Lua call.
    const writes = [...batch].map(([hash, at]) =>
      redis.eval(RECORD_USE, 1, keys.token(hash), LAST_USED_FIELD, String(at)),
    )
    const results = await Promise.allSettled(writes)
    const failed = results.find((r) => r.status === 'rejected')
    if (failed) {
      // Keep the notes for the next round (unless newer ones arrived meanwhile).
      for (const [hash, at] of batch) if (!pending.has(hash)) pending.set(hash, at)
      opts.onError((failed as PromiseRejectedResult).reason)
    }
  }
  const timer = setInterval(() => void flush(), opts.intervalMs)
  timer.unref()
  return {
    seen(hash, at) {
      pending.set(hash, at)
    },
    flush,
    async close() {
      clearInterval(timer)
      await flush()
    },
  }
}
