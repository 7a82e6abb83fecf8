// Rewrite stage, `scoping: query` (DESIGN §4): the upstream understands `album` / `inbox` query
// parameters. The query was read once by rewrite/canonical-query.ts, which refused every spelling
// of these names but the exact one; here the exact ones are read (repeated ones too), then all of
// them are dropped and the one the policy allows is set. Every other pair is kept, in order, in
// its canonical spelling: the upstream receives a query re-serialised from what tokengate read.
import { BadRequest } from '../errors.js'
import type { Decision, ScopeRequest } from '../policy/decide.js'
import { encodeQueryComponent, type ParsedQuery, type QueryParam, serializeQuery } from './canonical-query.js'

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

/**
 * Which scope parameter a name is, if any. After parseQuery only the exact names `album` and
 * `inbox` can be one; folding stays so callers reading canonical text are never more lenient.
 */
export function scopeParamName(rawName: string): ScopeParam | null {
  if (rawName === 'album' || rawName === 'inbox') return rawName
  const name = formDecode(rawName)
  if (name === null) throw new BadRequest('bad_query')
  const folded = name.trim().toLowerCase()
  return folded === 'album' || folded === 'inbox' ? folded : null
}

function isScopeParam(p: QueryParam): boolean {
  return p.name === 'album' || p.name === 'inbox'
}

const EMPTY: ScopeRequest = { albums: [], inbox: false }

/** The album/inbox the client asked for. Throws BadRequest('bad_query') for an empty album or an inbox that is neither true nor false. */
export function readScopeRequest(query: ParsedQuery): ScopeRequest {
  let albums: string[] | null = null
  let inbox = false
  for (const p of query.params) {
    if (p.name === 'album') {
      if (p.value === '') throw new BadRequest('bad_query')
      albums ??= []
      if (!albums.includes(p.value)) albums.push(p.value)
    } else if (p.name === 'inbox') {
      const v = p.value.toLowerCase()
      if (v === 'true') inbox = true
      else if (v !== 'false' && v !== '') throw new BadRequest('bad_query')
    }
  }
  return albums === null && !inbox ? EMPTY : { albums: albums ?? [], inbox }
}

/** The pairs other than album/inbox (the same array when there are none). */
export function withoutScopeParams(query: ParsedQuery): readonly QueryParam[] {
  return query.params.some(isScopeParam) ? query.params.filter((p) => !isScopeParam(p)) : query.params
}

/** The canonical query without album/inbox (`scoping: studies` sends none upstream). */
export function stripScopeParams(query: ParsedQuery): string {
  const kept = withoutScopeParams(query)
  return kept === query.params ? query.text : serializeQuery(kept)
}

/** The query string to send upstream: client scope parameters removed, the decided one set. */
export function scopeQuery(query: ParsedQuery, decision: Decision): string {
  const kept = stripScopeParams(query)
  const scope = decision.scope
  let add: string
  if (scope.kind === 'album' || scope.kind === 'user-album')
    add = `album=${encodeQueryComponent(scope.album)}`
  else if (scope.kind === 'inbox') add = 'inbox=true'
  else return kept
  return kept === '' ? add : `${kept}&${add}`
}
