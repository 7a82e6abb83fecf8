// Rewrite stage, `scoping: query` (DESIGN §4): the upstream understands `album` / `inbox` query
// parameters. Read what the client asked for under every spelling (repeated, any case,
// percent-encoded, `+` for space), then remove every such spelling and set the one the policy
// allows. Every other parameter is kept byte for byte, in order.
import { BadRequest } from '../errors.js'
import type { Decision, ScopeRequest } from '../policy/decide.js'

type ScopeParam = 'album' | 'inbox'

/** application/x-www-form-urlencoded decoding of one component; null when it is not valid. */
export function formDecode(raw: string): string | null {
  if (!raw.includes('%') && !raw.includes('+')) return raw
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '))
  } catch {
    return null
  }
}

/** Which scope parameter a raw `name` is, if any; throws on an undecodable name (fail closed). */
export function scopeParamName(rawName: string): ScopeParam | null {
  const name = formDecode(rawName)
  if (name === null) throw new BadRequest('bad_query')
  const folded = name.trim().toLowerCase()
  return folded === 'album' || folded === 'inbox' ? folded : null
}

const EMPTY: ScopeRequest = { albums: [], inbox: false }

/** The album/inbox the client asked for. Throws BadRequest('bad_query') for an undecodable name or value. */
export function readScopeRequest(query: string): ScopeRequest {
  // Fast path: most requests carry neither parameter in any spelling.
  if (query === '' || !/album|inbox|%/i.test(query)) return EMPTY
  const albums: string[] = []
  let inbox = false
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=')
    const param = scopeParamName(eq === -1 ? pair : pair.slice(0, eq))
    if (!param) continue
    const value = formDecode(eq === -1 ? '' : pair.slice(eq + 1))
    if (value === null) throw new BadRequest('bad_query')
    if (param === 'album') {
      if (value === '') throw new BadRequest('bad_query')
      if (!albums.includes(value)) albums.push(value)
    } else {
      const v = value.toLowerCase()
      if (v === 'true') inbox = true
      else if (v !== 'false' && v !== '') throw new BadRequest('bad_query')
    }
  }
  return albums.length === 0 && !inbox ? EMPTY : { albums, inbox }
}

/** The query without any client spelling of album/inbox (`scoping: studies` sends none upstream). */
export function stripScopeParams(query: string): string {
  if (query === '' || !/album|inbox|%/i.test(query)) return query
  return query
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=')
      return scopeParamName(eq === -1 ? pair : pair.slice(0, eq)) === null
    })
    .join('&')
}

/** The query string to send upstream: client scope parameters removed, the decided one set. */
export function scopeQuery(query: string, decision: Decision): string {
  const kept = stripScopeParams(query)
  const scope = decision.scope
  let add = ''
  if (scope.kind === 'album' || scope.kind === 'user-album') add = `album=${encodeURIComponent(scope.album)}`
  else if (scope.kind === 'inbox') add = 'inbox=true'
  if (!add) return kept
  return kept === '' ? add : `${kept}&${add}`
}
