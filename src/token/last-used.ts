// Token lookup, bookkeeping: when each token was last used (and last refused, with the reason),
// written in batches. The hot path only notes the time in a Map (one entry per token, the latest
// use wins); every `tokens.lastUsedInterval` the notes are flushed in steps of 200 tokens (one
// script call on a single node or Sentinel, 200 one-record calls on Cluster, where records live in
// different slots), one step after the other: each step's reply comes back before the next is
// built, so neither the event loop nor Redis is held for the whole flush at once. The write never
// recreates a record that has left Redis and never moves the time backwards (several replicas
// write the same field), so writing a note twice is harmless: a failed flush keeps all its notes.
// Both scripts are ioredis commands (redis-script.ts).
import { Cluster, type Redis } from 'ioredis'
import type { Keys } from './keys.js'
import { LAST_REFUSED_FIELD, LAST_REFUSED_REASON_FIELD, LAST_USED_FIELD, type TokenHash } from './record.js'
import { defineScript } from './redis-script.js'

// KEYS = token records, ARGV[1] = field, ARGV[i + 1] = milliseconds for KEYS[i]. Each only if its
// record exists and holds an older time.
const RECORD_USES = `local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local current = tonumber(redis.call('HGET', key, ARGV[1]) or '0') or 0
    if current < tonumber(ARGV[i + 1]) then
      redis.call('HSET', key, ARGV[1], ARGV[i + 1])
      n = n + 1
    end
  end
end
return n`

/**
 * Tokens per step of a flush. On a single node or Sentinel a step is one script call for this many
 * records instead of one each (10,000 tokens in use cost 50 calls a flush, not 10,000: a bench's
 * flush of 30,000 once cost ~1 s of CPU in tokengate and Redis together); on Cluster, where the
 * records live in different slots, this many calls at once. Sending all steps at once held the
 * event loop for 7–16 ms building them for 10,000 tokens, and often as long again writing them and
 * reading the replies (the requests in flight waited that long), and Redis for as long as its 50
 * scripts ran back to back (bench/last-used-flush.js).
 */
const USES_PER_STEP = 200

/** Refusals of a known token an operator hunts for (a leaked revoked token still being tried). */
const REFUSALS: ReadonlySet<string> = new Set(['revoked', 'expired', 'disabled', 'user_inactive'])

// KEYS[1] = token record, ARGV[1] = ms, ARGV[2] = reason: lastRefusedAt and lastRefusedReason, only
// if the record exists and holds an older time.
const RECORD_REFUSAL = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], '${LAST_REFUSED_FIELD}') or '0') or 0
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], '${LAST_REFUSED_FIELD}', ARGV[1], '${LAST_REFUSED_REASON_FIELD}', ARGV[2])
return 1`

/** A map's entries, USES_PER_STEP at a time, taken as each step is sent (no copy of the whole map). */
function* steps<K, V>(notes: Map<K, V>): Generator<[K, V][]> {
  let part: [K, V][] = []
  for (const entry of notes) {
    part.push(entry)
    if (part.length === USES_PER_STEP) {
      yield part
      part = []
    }
  }
  if (part.length) yield part
}

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
  const recordUses = defineScript<[keyCount: number, ...args: string[]], number>(
    redis,
    'tokengateRecordUses',
    { lua: RECORD_USES },
  )
  const recordRefusal = defineScript<[key: string, at: string, reason: string], number>(
    redis,
    'tokengateRecordRefusal',
    { lua: RECORD_REFUSAL, numberOfKeys: 1 },
  )
  const cluster = redis instanceof Cluster
  /** The writes of one step: at most USES_PER_STEP uses, or refusals. */
  const writeUses = (part: [TokenHash, number][]): Promise<unknown> =>
    cluster
      ? Promise.all(part.map(([hash, at]) => recordUses(1, keys.token(hash), LAST_USED_FIELD, String(at))))
      : recordUses(
          part.length,
          ...part.map(([hash]) => keys.token(hash)),
          LAST_USED_FIELD,
          ...part.map(([, at]) => String(at)),
        )
  const writeRefusals = (part: [TokenHash, [number, string]][]): Promise<unknown> =>
    Promise.all(part.map(([hash, [at, reason]]) => recordRefusal(keys.token(hash), String(at), reason)))
  let busy = false
  const writeNoted = async () => {
    if (pending.size === 0 && refusals.size === 0) return
    const batch = pending
    const refused = refusals
    pending = new Map()
    refusals = new Map()
    busy = true
    try {
      for (const part of steps(batch)) await writeUses(part)
      for (const part of steps(refused)) await writeRefusals(part)
    } catch (err) {
      // Keep the notes for the next round (unless newer ones arrived meanwhile); the steps already
      // written are written again then, which changes nothing.
      for (const [hash, at] of batch) if (!pending.has(hash)) pending.set(hash, at)
      for (const [hash, note] of refused) if (!refusals.has(hash)) refusals.set(hash, note)
      opts.onError(err)
    } finally {
      busy = false
    }
  }
  /** Flushes run one at a time, in order: each starts with what was noted when it starts. */
  let running: Promise<void> = Promise.resolve()
  const flush = () => {
    running = running.then(writeNoted)
    return running
  }
  // A timer tick while a flush still runs (a slow or absent Redis) leaves the notes to the next.
  const timer = setInterval(() => {
    if (!busy) void flush()
  }, opts.intervalMs)
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
