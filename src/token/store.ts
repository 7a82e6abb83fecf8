// The TokenStore interface: what the pipeline needs from the token database. The Redis store and
// the cache decorator both satisfy it; test/conformance/token-store.ts is the contract's test.
import type { TokenHash, TokenRecord } from './record.js'

export interface TokenStore {
  /**
   * The record for a token hash, or null when there is none: the fields the gate decides with
   * (record.ts LOOKUP_FIELDS) and the user's status; the operator's fields (description,
   * createdAt, lastUsedAt…) are left empty. Throws StoreUnavailable.
   */
  lookup(hash: TokenHash): Promise<TokenRecord | null>
  /** Whether `user` is a member of `album`. Throws StoreUnavailable. */
  isAlbumMember(user: string, album: string): Promise<boolean>
  /** StudyInstanceUIDs of an album (scoping: studies). Throws StoreUnavailable. */
  albumStudies(album: string): Promise<ReadonlySet<string>>
  /** StudyInstanceUIDs in a user's inbox (scoping: studies). Throws StoreUnavailable. */
  inboxStudies(user: string): Promise<ReadonlySet<string>>
  /** The albums `user` is a member of (a user token without `?album=` sees all of them). Throws StoreUnavailable. */
  userAlbums(user: string): Promise<readonly string[]>
  /** Resolves when the store answers (readiness). */
  ping(): Promise<void>
  close(): Promise<void>
}
