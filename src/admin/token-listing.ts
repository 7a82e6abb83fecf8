// Token administration, listing (`token list`, `GET /tokens`, and the selection of the bulk
// commands): one page of tokens matching a filter, in a sort order, from a cursor. Read only.
//
// How it stays fast among 100,000 tokens: without a user or album filter, sorted by created or
// expires, it walks the sorted sets `tokens:by-created` / `tokens:by-expires` (written by create
// after the record, beside the other indexes) from the cursor's position with ZRANGE BYSCORE …
// LIMIT, a few hundred ids at a time, loading only those records: a page of 100 costs a few round
// trips whatever the population. Date bounds on the sort key narrow the ZRANGE itself; other
// conditions are checked on each record, so a rare match costs a longer walk. With --user or
// --album the (small) per-user or per-album set is read whole and sorted in memory; so is
// `--sort last-used` (last use is written by the proxy in batches, with no index).
import type { Keys } from '../token/keys.js'
import type { TokenHash, TokenRecord } from '../token/record.js'
import type { RedisClient } from '../token/redis-client.js'
import { members, SCAN_COUNT } from './redis-ops.js'
import { type Cursor, encodeCursor, matches, sortKey, type TokenQuery } from './token-query.js'
import { type TokenInfo, toInfo } from './token-view.js'

export interface Found {
  hash: TokenHash
  record: TokenRecord
}

/** One page: the tokens, and the cursor of the next page (null on the last). */
export interface TokenPage<T = TokenInfo> {
  items: T[]
  nextCursor: string | null
}

/** Records by id, null where none is left (TokenAdmin.loadMany). */
export type Loader = (ids: string[]) => Promise<(Found | null)[]>

/** Where the walk stands: `skip` entries of sort key `score` consumed (NaN: none yet). */
class Position {
  constructor(
    public score: number,
    public skip: number,
  ) {}
  step(score: number): void {
    if (score === this.score) this.skip++
    else {
      this.score = score
      this.skip = 1
    }
  }
}

export class TokenListing {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly load: Loader,
  ) {}

  /** One page of the tokens matching the query at `now`, as records (the bulk commands act on them). */
  async pageRecords(q: TokenQuery, now: number): Promise<TokenPage<Found>> {
    const f = q.filter
    if (q.sort === 'last-used' || f.user !== undefined || f.album !== undefined) return this.inMemory(q, now)
    return this.indexed(q, now)
  }

  /** One page as administrators see it. */
  async page(q: TokenQuery, now: number): Promise<TokenPage> {
    const { items, nextCursor } = await this.pageRecords(q, now)
    return { items: items.map((x) => toInfo(x.record, now)), nextCursor }
  }

  private async indexed(q: TokenQuery, now: number): Promise<TokenPage<Found>> {
    const key = q.sort === 'created' ? this.keys.tokensByCreated() : this.keys.tokensByExpires()
    const lo = q.sort === 'created' ? q.filter.createdAfter : q.filter.expiresAfter
    const hi = q.sort === 'created' ? q.filter.createdBefore : q.filter.expiresBefore
    const low = lo === undefined ? '-inf' : String(lo)
    const high = hi === undefined ? '+inf' : `(${hi}`
    const pos = q.cursor ? new Position(q.cursor.score, q.cursor.skip) : new Position(Number.NaN, 0)
    const items: Found[] = []
    const batch = Math.max(q.limit, SCAN_COUNT)
    for (;;) {
      // From the position's score (inclusive), skipping what was consumed at that score.
      const from = Number.isNaN(pos.score) ? (q.desc ? high : low) : String(pos.score)
      const reply = q.desc
        ? await this.redis.zrange(key, from, low, 'BYSCORE', 'REV', 'LIMIT', pos.skip, batch, 'WITHSCORES')
        : await this.redis.zrange(key, from, high, 'BYSCORE', 'LIMIT', pos.skip, batch, 'WITHSCORES')
      const ids: string[] = []
      const scores: number[] = []
      for (let i = 0; i + 1 < reply.length; i += 2) {
        ids.push(reply[i] as string)
        scores.push(Number(reply[i + 1]))
      }
      const found = await this.load(ids)
      for (let i = 0; i < ids.length; i++) {
        pos.step(scores[i] as number)
        const x = found[i]
        if (x && matches(x.record, q.filter, now)) {
          items.push(x)
          if (items.length === q.limit) return { items, nextCursor: this.next(q, pos) }
        }
      }
      if (ids.length < batch) return { items, nextCursor: null }
    }
  }

  private async inMemory(q: TokenQuery, now: number): Promise<TokenPage<Found>> {
    const f = q.filter
    // With both, the user's set (no intersection of a big album set).
    const set =
      f.user !== undefined
        ? this.keys.userTokens(f.user)
        : f.album !== undefined
          ? this.keys.albumTokens(f.album)
          : this.keys.allTokens()
    const ids = await members(this.redis, set)
    const all: { score: number; x: Found }[] = []
    for (let i = 0; i < ids.length; i += SCAN_COUNT) {
      for (const x of await this.load(ids.slice(i, i + SCAN_COUNT)))
        if (x && matches(x.record, f, now)) all.push({ score: sortKey(x.record, q.sort), x })
    }
    // Ties by id, as Redis orders equal scores (reversed with --desc, as ZRANGE REV).
    all.sort((a, b) => a.score - b.score || (a.x.record.id < b.x.record.id ? -1 : 1))
    if (q.desc) all.reverse()
    let start = 0
    const c = q.cursor
    if (c) {
      const before = (s: number) => (q.desc ? s > c.score : s < c.score)
      while (start < all.length && before((all[start] as { score: number }).score)) start++
      start += c.skip
    }
    const pos = c ? new Position(c.score, c.skip) : new Position(Number.NaN, 0)
    const page = all.slice(start, start + q.limit)
    for (const e of page) pos.step(e.score)
    const more = start + q.limit < all.length
    return { items: page.map((e) => e.x), nextCursor: more ? this.next(q, pos) : null }
  }

  private next(q: TokenQuery, pos: Cursor): string {
    return encodeCursor(q, { score: pos.score, skip: pos.skip })
  }
}
