// Decide stage: from the token record, the matched route and the scope the client asked for,
// allow (a Decision) or refuse (401 InvalidToken, 403 Forbidden, 404 OutOfScope, 400 BadRequest).
// No I/O but the user-token album membership check, which the store caches.
import { BadRequest, Forbidden, InvalidToken, OutOfScope } from '../errors.js'
import type { Action, RouteMatch } from '../route/match.js'
import type { TokenRecord } from '../token/record.js'
import type { TokenStore } from '../token/store.js'
import { authorizeResource } from './resource-decide.js'

/** What the client asked for in the query (`album=`, `inbox=`), every spelling folded. */
export interface ScopeRequest {
  /** Distinct album ids asked for. */
  albums: readonly string[]
  /** `inbox=true` asked for. */
  inbox: boolean
}

export type Scope =
  | { kind: 'album'; album: string }
  | { kind: 'inbox'; user: string }
  | { kind: 'user-album'; user: string; album: string }
  /** A user token with neither album nor inbox: everything the user may reach. */
  | { kind: 'user'; user: string }
  /** An api token on a resource mount: what it reaches is the resource its grants cover. */
  | { kind: 'api' }

export interface Decision {
  tokenId: string
  user: string
  scope: Scope
  perms: ReadonlySet<Action>
}

const ALL_PERMS: ReadonlySet<Action> = new Set<Action>(['read', 'write', 'download', 'appropriate'])
const NO_PERMS: ReadonlySet<Action> = new Set<Action>()
const API_SCOPE: Scope = Object.freeze({ kind: 'api' })

/** Throws InvalidToken unless the record exists and is enabled, unrevoked and unexpired at `now`. */
export function checkValid(record: TokenRecord | null, now: number): asserts record is TokenRecord {
  if (!record) throw new InvalidToken('unknown')
  if (record.revokedAt > 0) throw new InvalidToken('revoked', record.id)
  if (!record.enabled) throw new InvalidToken('disabled', record.id)
  if (record.expiresAt <= now) throw new InvalidToken('expired', record.id)
}

/**
 * The policy decision for one request. Order: validity (401), permission (403), then scope
 * (404 for anything outside the token's reach, so its existence is never confirmed). Answers
 * synchronously (a value, or a throw) unless it must ask the store: a user token choosing an
 * album. The hot path then costs no promise.
 */
export function decide(
  record: TokenRecord | null,
  route: RouteMatch,
  requested: ScopeRequest,
  now: number,
  store: Pick<TokenStore, 'isAlbumMember'>,
): Decision | Promise<Decision> {
  checkValid(record, now)

  // Resource mounts admit api tokens only, and api tokens reach resource mounts only.
  if (route.resource || record.kind === 'api') {
    authorizeResource(record, route)
    return { tokenId: record.id, user: record.user, scope: API_SCOPE, perms: NO_PERMS }
  }

  if (record.kind === 'album') {
    if (!record.perms.has(route.action)) throw new Forbidden('missing_perm', record.id)
    if (route.download && !record.perms.has('download')) throw new Forbidden('missing_perm', record.id)
    if (requested.inbox) throw new Forbidden('inbox_refused', record.id)
    for (const album of requested.albums) {
      if (album !== record.album) throw new OutOfScope('album_not_allowed', record.id)
    }
    return {
      tokenId: record.id,
      user: record.user,
      scope: { kind: 'album', album: record.album },
      perms: record.perms,
    }
  }

  // User tokens have every permission over what their user may reach.
  const user = record.user
  if (requested.albums.length > 1 || (requested.albums.length === 1 && requested.inbox)) {
    throw new BadRequest('conflicting_scope')
  }
  const album = requested.albums[0]
  const tokenId = record.id
  if (album !== undefined) {
    return store.isAlbumMember(user, album).then((member) => {
      if (!member) throw new OutOfScope('not_album_member', tokenId)
      return { tokenId, user, scope: { kind: 'user-album', user, album }, perms: ALL_PERMS }
    })
  }
  const scope: Scope = requested.inbox ? { kind: 'inbox', user } : { kind: 'user', user }
  return { tokenId, user, scope, perms: ALL_PERMS }
}
