// Token lookup, bookkeeping: when each token was last used (and last refused, with the reason),
// written in batches. The hot path
// only notes the time in a Map (one entry per token, the latest use wins); every
// `tokens.lastUsedInterval` the notes are flushed as at most one Redis write per token. The
// write never recreates a record that has left Redis and never moves the time backwards (several
// replicas write the same field). Single-key commands only, so it works on Cluster.
import type { Cluster, Redis } from 'ioredis'
import type { Keys } from './keys.js'
import { LAST_REFUSED_FIELD, LAST_REFUSED_REASON_FIELD, LAST_USED_FIELD, type TokenHash } from './record.js'

// KEYS[1] = token record, ARGV[1] = field, ARGV[2] = milliseconds. Only if the record exists and
// holds an older time.
const RECORD_USE = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
if current >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`

/** Refusals of a known token an operator hunts for (a leaked revoked token still being tried). */
const REFUSALS: ReadonlySet<string> = new Set(['revoked', 'expired', 'disabled', 'user_inactive'])

// KEYS[1] = token record, ARGV[1] = ms, ARGV[2] = reason: lastRefusedAt and lastRefusedReason, only
// if the record exists and holds an older time.
const RECORD_REFUSAL = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], '${LAST_REFUSED_FIELD}') or '0') or 0
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], '${LAST_REFUSED_FIELD}', ARGV[1], '${LAST_REFUSED_REASON_FIELD}', ARGV[2])
return 1`

export interface LastUsedRecorder {
  /** Note a use (cheap: a Map write). */
  seen(hash: TokenHash, at: number): void
  /**
   * Note a refusal of a token whose secret matched a record (batched like uses); only reasons
   * that say the token itself is no longer good (revoked, expired, disabled, user inactive) count.
   */
  refused(hash: TokenHash, at: number, reason: string): void
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
  let refusals = new Map<TokenHash, [number, string]>()
  if (opts.intervalMs <= 0) {
    return { seen() {}, refused() {}, flush: async () => {}, close: async () => {} }
  }
  const flush = async () => {
    if (pending.size === 0 && refusals.size === 0) return
    const batch = pending
    const refused = refusals
    pending = new Map()
    refusals = new Map()
    // ioredis pipelines these automatically per node; each is one small Lua call.
    const writes = [
      ...[...batch].map(([hash, at]) =>
        redis.eval(RECORD_USE, 1, keys.token(hash), LAST_USED_FIELD, String(at)),
      ),
      ...[...refused].map(([hash, [at, reason]]) =>
        redis.eval(RECORD_REFUSAL, 1, keys.token(hash), String(at), reason),
      ),
    ]
    const results = await Promise.allSettled(writes)
    const failed = results.find((r) => r.status === 'rejected')
    if (failed) {
      // Keep the notes for the next round (unless newer ones arrived meanwhile).
      for (const [hash, at] of batch) if (!pending.has(hash)) pending.set(hash, at)
      for (const [hash, note] of refused) if (!refusals.has(hash)) refusals.set(hash, note)
      opts.onError((failed as PromiseRejectedResult).reason)
    }
  }
  const timer = setInterval(() => void flush(), opts.intervalMs)
  timer.unref()
  return {
    seen(hash, at) {
      pending.set(hash, at)
    },
    refused(hash, at, reason) {
      if (REFUSALS.has(reason)) refusals.set(hash, [at, reason])
    },
    flush,
    async close() {
      clearInterval(timer)
      await flush()
    },
  }
}
