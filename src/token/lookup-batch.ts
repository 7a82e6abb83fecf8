// Token lookups on a single node or Sentinel, batched: every lookup asked in one turn of the event
// loop (the cache misses of requests read together) goes to Redis in one script call that reads
// them all, each token's lookup fields (record.ts LOOKUP_FIELDS) followed by its user's
// (USER_LOOKUP_FIELDS), at a fixed stride in one flat reply. Per call, ioredis builds a command and
// a promise and Redis wakes, parses and answers once: under load that per-call cost, not the
// reading, was most of a cache miss (bench/lookup.js). A lone lookup waits one turn (setImmediate)
// more than it would alone. The user key is built in the script, which Cluster forbids (it may
// live in another slot): token/redis-store.ts does two HMGETs per lookup there.
// The script is an ioredis command (redis-script.ts).
import type { Redis } from 'ioredis'
import { LOOKUP_FIELDS, USER_LOOKUP_FIELDS } from './record.js'
import { defineScript } from './redis-script.js'

/** Values per token in the reply: its lookup fields, then its user's (nil when none). */
export const LOOKUP_STRIDE = LOOKUP_FIELDS.length + USER_LOOKUP_FIELDS.length
/** Most tokens per call, which bounds how long one call holds Redis (two HMGETs per token). */
export const MAX_BATCH = 64

const quoted = (names: readonly string[]) => names.map((n) => `'${n}'`).join(', ')
const FIELDS = LOOKUP_FIELDS.length
// A missing record reads as nils (no record); a missing or absent user as nils (active, no end).
const LOOKUP_SCRIPT = `local out = {}
local n = 0
for k = 1, #KEYS do
  local t = redis.call('HMGET', KEYS[k], ${quoted(LOOKUP_FIELDS)})
  for i = 1, ${FIELDS} do out[n + i] = t[i] end
  local user = t[${LOOKUP_FIELDS.indexOf('user') + 1}]
  local u = {}
  if user and user ~= '' then u = redis.call('HMGET', ARGV[1] .. user, ${quoted(USER_LOOKUP_FIELDS)}) end
  for i = 1, ${USER_LOOKUP_FIELDS.length} do out[n + ${FIELDS} + i] = u[i] or false end
  n = n + ${LOOKUP_STRIDE}
end
return out`
/** One token's values: LOOKUP_FIELDS, then USER_LOOKUP_FIELDS (null where absent). */
export type LookupValues = (string | null)[]

interface Waiter {
  key: string
  resolve: (values: LookupValues) => void
  reject: (err: unknown) => void
}

export class LookupBatcher {
  private waiting: Waiter[] = []
  private readonly flushWaiting = () => this.flush()
  private readonly lookupScript: (keyCount: number, ...args: string[]) => Promise<LookupValues>

  constructor(
    redis: Redis,
    /** The user key prefix (keys.ts userPrefix()): the script appends the token's user. */
    private readonly userPrefix: string,
  ) {
    this.lookupScript = defineScript(redis, 'tokengateLookup', { lua: LOOKUP_SCRIPT })
  }

  /** The lookup values of the token record at `key`; rejects with ioredis's error. */
  lookup(key: string): Promise<LookupValues> {
    return new Promise((resolve, reject) => {
      if (this.waiting.push({ key, resolve, reject }) === 1) setImmediate(this.flushWaiting)
      else if (this.waiting.length === MAX_BATCH) this.flush()
    })
  }

  private flush(): void {
    const batch = this.waiting
    if (batch.length === 0) return
    this.waiting = []
    const keys = batch.map((w) => w.key)
    this.lookupScript(keys.length, ...keys, this.userPrefix).then(
      (reply) => {
        for (let i = 0; i < batch.length; i++)
          (batch[i] as Waiter).resolve(reply.slice(i * LOOKUP_STRIDE, (i + 1) * LOOKUP_STRIDE))
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err)
      },
    )
  }
}
