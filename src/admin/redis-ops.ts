// Admin Redis helpers shared by the token and user operations (admin/tokens.ts, admin/users.ts):
// conditional writes as small scripts, SSCAN/SCAN walks (SCAN on every master of a Cluster), and a
// MULTI runner that throws the first command error. Single-key commands only, so all of it works
// unchanged on Redis Cluster.
import { Cluster } from 'ioredis'
import type { RedisClient } from '../token/redis-client.js'

/** Batch size of SCAN / SSCAN and of record reads. */
export const SCAN_COUNT = 500

// HSET only if the hash still exists: a record that expired out of Redis between our read and
// this write must not come back as a partial hash without an expiry.
const HSET_IF_EXISTS = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`

/** Revoke only a token record that exists and is not revoked yet (a revoked token keeps its first date). */
export const REVOKE_IF_LIVE = `local r = redis.call('HGET', KEYS[1], 'revokedAt')
if r == false then return 0 end
if tonumber(r) and tonumber(r) > 0 then return 0 end
redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1])
return 1`

/** Write fields of an existing hash; false (and nothing written) when it is gone. */
export async function hsetIfExists(
  redis: RedisClient,
  key: string,
  fields: Record<string, string>,
): Promise<boolean> {
  return (await redis.eval(HSET_IF_EXISTS, 1, key, ...Object.entries(fields).flat())) !== 0
}

/** Every member of a set, read with SSCAN (no single huge reply). */
export async function members(redis: RedisClient, set: string): Promise<string[]> {
  const ids = new Set<string>()
  let cursor = '0'
  do {
    const [next, batch] = await redis.sscan(set, cursor, 'COUNT', SCAN_COUNT)
    for (const id of batch) ids.add(id)
    cursor = next
  } while (cursor !== '0')
  return [...ids]
}

/** Every member of a sorted set, read with ZSCAN (no single huge reply). */
export async function zmembers(redis: RedisClient, zset: string): Promise<string[]> {
  const ids = new Set<string>()
  let cursor = '0'
  do {
    const [next, batch] = await redis.zscan(zset, cursor, 'COUNT', SCAN_COUNT)
    for (let i = 0; i < batch.length; i += 2) ids.add(batch[i] as string)
    cursor = next
  } while (cursor !== '0')
  return [...ids]
}

/**
 * SCAN every key matching `pattern`, in batches, on every master (a Cluster spreads keys over its
 * masters; SCAN on one node sees only that node's). A key seen twice is harmless to callers.
 */
export async function scanKeys(
  redis: RedisClient,
  pattern: string,
  onBatch: (keys: string[]) => Promise<void>,
): Promise<void> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis]
  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
      if (batch.length) await onBatch(batch)
      cursor = next
    } while (cursor !== '0')
  }
}

/** Run a MULTI or pipeline and return its replies, throwing the first command error. */
export async function exec(p: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<unknown[]> {
  const results = (await p.exec()) ?? []
  return results.map(([err, value]) => {
    if (err) throw err
    return value
  })
}
