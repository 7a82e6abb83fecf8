// Redis key builders (DESIGN §3). Every key name is spelled here and only here; the prefix comes
// from config (`redis.keyPrefix`).
import type { TokenHash } from './record.js'

export interface Keys {
  /** hash: the token record, keyed by sha256(secret). */
  token(hash: TokenHash): string
  /** string: public id → token hash. */
  id(id: string): string
  /** set: every token id (for `token list`). */
  allTokens(): string
  /** sorted set: every token id scored by its createdAt (`token list` pages in this order). */
  tokensByCreated(): string
  /** sorted set: every token id scored by its expiresAt (`token list --sort expires`). */
  tokensByExpires(): string
  /** set: token ids of a user. */
  userTokens(user: string): string
  /** set: token ids pinned to an album. */
  albumTokens(album: string): string
  /** SCAN pattern of every token record key (revoke-all's fallback over a stale index). */
  tokenPattern(): string
  /** The hash of a key `token(hash)` built (for keys a SCAN returned). */
  hashOfTokenKey(key: string): TokenHash
  /** SCAN patterns of the per-user and per-album token index sets (`token prune-index`). */
  indexPatterns(): string[]
  /** hash: a user record (`tokengate user …`): name, email, attrs, status, validUntil. */
  user(user: string): string
  /** The prefix `user(id)` puts before the id (the store's lookup script builds the key from it). */
  userPrefix(): string
  /** set: every user id with a record (`user list`). */
  users(): string
  /** set: albums a user is a member of. */
  userAlbums(user: string): string
  /** set: members of an album (the reverse of userAlbums, for `album members`). */
  albumMembers(album: string): string
  /** SCAN MATCH pattern of every userAlbums set (`token prune-index` rebuilds albumMembers). */
  userAlbumsPattern(): string
  /** The user of a userAlbums key. */
  userOfAlbumsKey(key: string): string
  /** set: StudyInstanceUIDs in an album (scoping: studies). */
  albumStudies(album: string): string
  /** set: StudyInstanceUIDs in a user's inbox (scoping: studies). */
  userInbox(user: string): string
  /** set, expiring: SOP Instance UIDs of a study not yet in the album, stored through it (STOW-RS). */
  albumStored(album: string, study: string): string
  /** set, expiring: the same for a user's inbox. */
  inboxStored(user: string, study: string): string
  /** string, expiring: which album or inbox first stored a study new to the archive (STOW-RS). */
  studyClaim(study: string): string
  /** string: sha256 of a refresh token secret → its family id (every secret the family ever had). */
  refreshSecret(hash: TokenHash): string
  /** hash: a refresh token family (admin/refresh.ts); `{id}` hash tag: same cluster slot as its tokens. */
  refreshFamily(id: string): string
  /** sorted set: ids of the access tokens a family minted, scored by their expiresAt. */
  refreshFamilyTokens(id: string): string
  /** set: refresh family ids of a user (`token revoke --user`). */
  userRefresh(user: string): string
  /** pub/sub channel for invalidations. */
  events(): string
  /** stream: the audit trail of administrative changes (capped with MAXLEN ~ audit.maxLen). */
  audit(): string
  /** string, expiring: refused credentials from one client address in one window (server/auth-limiter.ts). */
  authFailures(window: number, address: string): string
}

// A prefix used in a SCAN MATCH pattern: glob characters in it stand for themselves.
const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&')

export function makeKeys(prefix: string): Keys {
  const glob = globEscape(prefix)
  return {
    token: (hash) => `${prefix}token:${hash}`,
    id: (id) => `${prefix}id:${id}`,
    allTokens: () => `${prefix}tokens`,
    tokensByCreated: () => `${prefix}tokens:by-created`,
    tokensByExpires: () => `${prefix}tokens:by-expires`,
    userTokens: (user) => `${prefix}user:${user}:tokens`,
    albumTokens: (album) => `${prefix}album:${album}:tokens`,
    tokenPattern: () => `${glob}token:*`,
    hashOfTokenKey: (key) => key.slice(prefix.length + 'token:'.length) as TokenHash,
    indexPatterns: () => [`${glob}user:*:tokens`, `${glob}album:*:tokens`],
    user: (user) => `${prefix}user:${user}`,
    userPrefix: () => `${prefix}user:`,
    users: () => `${prefix}users`,
    userAlbums: (user) => `${prefix}user:${user}:albums`,
    albumMembers: (album) => `${prefix}album:${album}:members`,
    userAlbumsPattern: () => `${glob}user:*:albums`,
    userOfAlbumsKey: (key) => key.slice(prefix.length + 'user:'.length, -':albums'.length),
    albumStudies: (album) => `${prefix}album:${album}:studies`,
    userInbox: (user) => `${prefix}user:${user}:inbox`,
    albumStored: (album, study) => `${prefix}album:${album}:stored:${study}`,
    inboxStored: (user, study) => `${prefix}user:${user}:stored:${study}`,
    studyClaim: (study) => `${prefix}study:${study}:claim`,
    refreshSecret: (hash) => `${prefix}refresh:${hash}`,
    refreshFamily: (id) => `${prefix}rfam:{${id}}`,
    refreshFamilyTokens: (id) => `${prefix}rfam:{${id}}:tokens`,
    userRefresh: (user) => `${prefix}user:${user}:refresh`,
    events: () => `${prefix}events`,
    audit: () => `${prefix}audit`,
    authFailures: (window, address) => `${prefix}authfail:${window}:${address}`,
  }
}

/** What an invalidation message names: one token, everything about a user, or an album. */
export type EvictKey =
  | { kind: 'token'; hash: TokenHash }
  | { kind: 'user'; user: string }
  | { kind: 'album'; album: string }

/** Wire form on the events channel: the bare token hash, `user:<id>` or `album:<id>` (DESIGN §3). */
export function encodeEvict(key: EvictKey): string {
  if (key.kind === 'token') return key.hash
  return key.kind === 'user' ? `user:${key.user}` : `album:${key.album}`
}

export function decodeEvict(message: string): EvictKey | null {
  if (message.startsWith('user:')) return { kind: 'user', user: message.slice(5) }
  if (message.startsWith('album:')) return { kind: 'album', album: message.slice(6) }
  if (/^[0-9a-f]{64}$/.test(message)) return { kind: 'token', hash: message as TokenHash }
  return null
}
