// Decide stage, before any lookup: the album ids a request names (`?album=`) must be well formed
// (token/ids.ts), so a 12 KB or newline-carrying value never reaches a Redis key, a log line or
// the membership cache (one user token once grew that cache by 700 MB with distinct 12 KB values).
import { BadRequest } from '../errors.js'
import { isValidId } from '../token/ids.js'
import type { ScopeRequest } from './decide.js'

/** Throws BadRequest('bad_id') unless every album asked for is a well-formed id. */
export function checkScopeIds(requested: ScopeRequest): void {
  for (const album of requested.albums) if (!isValidId(album)) throw new BadRequest('bad_id')
}
