// Admin listing of plain sets (album members, a user's albums, study sets): sorted, a page at a time, with
// the same `{items, nextCursor}` shape and `limit`/`cursor` inputs as `token list`. The set is read
// with SSCAN and sorted in memory (membership sets are small); the cursor is the last member
// shown, so a page starts after it whatever was added or removed meanwhile.
import type { Keys } from '../token/keys.js'
import type { RedisClient } from '../token/redis-client.js'
import { type StudySetRef, StudySets } from '../token/study-sets.js'
import { AdminInputError } from './input-error.js'
import { members } from './redis-ops.js'
import type { TokenPage } from './token-listing.js'
import { DEFAULT_PAGE, MAX_PAGE } from './token-query.js'

export interface SetPageInput {
  limit?: string | number
  cursor?: string
}

export const SET_PAGE_FIELDS = ['limit', 'cursor'] as const

export async function pageSet(
  redis: RedisClient,
  key: string,
  input: SetPageInput,
): Promise<TokenPage<string>> {
  let limit = DEFAULT_PAGE
  if (input.limit !== undefined) {
    const t = String(input.limit).trim()
    limit = /^\d+$/.test(t) ? Number(t) : Number.NaN
    if (!(limit >= 1 && limit <= MAX_PAGE))
      throw new AdminInputError(
        `limit must be a whole number from 1 to ${MAX_PAGE}, got "${input.limit}"`,
        'limit',
      )
  }
  const after = input.cursor === undefined ? undefined : Buffer.from(input.cursor, 'base64url').toString()
  const all = (await members(redis, key)).sort()
  const rest = after === undefined ? all : all.filter((m) => m > after)
  const items = rest.slice(0, limit)
  const last = items.at(-1)
  return {
    items,
    nextCursor: rest.length > limit && last !== undefined ? Buffer.from(last).toString('base64url') : null,
  }
}

/**
 * A page of a study set (`album studies`, `inbox studies`, `GET /albums/{album}/studies`,
 * `GET /users/{user}/inbox`): sorted UIDs after the cursor, as above.
 */
export function pageStudies(
  redis: RedisClient,
  keys: Keys,
  ref: StudySetRef,
  input: SetPageInput,
): Promise<TokenPage<string>> {
  return pageSet(redis, new StudySets(redis, keys).key(ref), input)
}
