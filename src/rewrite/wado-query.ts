// Rewrite stage, WADO-URI query normalisation (per mount, `wadoNormalizeQuery`): re-encode each
// value with the fewest escapes RFC 3986 §3.4 allows in a query, so `contentType=image%2Fjpeg`
// reaches the upstream as `contentType=image/jpeg`. Orthanc 1.10 rejects the encoded form (it
// does not decode the value before comparing); other upstreams never see this rewrite. And, for
// `scoping: studies`, the one reading of the WADO-URI scope parameters (readWadoUids, below).

import { AmbiguousRequest, BadRequest } from '../errors.js'
import { isStudyUid } from '../token/study-sets.js'
import { type ParsedQuery, queryValues } from './canonical-query.js'

// Characters a query may carry as they are (pchar / "?"), minus the form delimiters & = + #.
const KEEP = /[A-Za-z0-9\-._~!$'()*,;:@/?]/

function minimalEncode(value: string): string {
  let out = ''
  for (const ch of value) out += KEEP.test(ch) ? ch : encodeURIComponent(ch)
  return out
}

export function normalizeWadoQuery(query: string): string {
  if (!query.includes('%')) return query
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      if (eq === -1) return pair
      const raw = pair.slice(eq + 1)
      if (!raw.includes('%')) return pair
      try {
        // A raw `+` (a space to form decoders) stays `+`; only `%XX` escapes are re-encoded.
        const value = raw.split('+').map((part) => minimalEncode(decodeURIComponent(part)))
        return `${pair.slice(0, eq)}=${value.join('+')}`
      } catch {
        return pair // not decodable: forward untouched, the upstream will judge it
      }
    })
    .join('&')
}

// ---------------------------------------------------------------------------------------------
// WADO-URI scope parameters (PS3.18 §9.2: parameter names are exact and case-sensitive). Orthanc
// reads only the exact name; a proxy that folded case or trimmed would check one parameter and let
// the archive read another. The one query parser (canonical-query.ts) has already refused every
// other spelling some parser could take for `studyUID`, `seriesUID` or `objectUID` (case-folded,
// decoded once or twice, trimmed, bracket-stripped) and any of them given twice (AmbiguousRequest);
// what is left here is to read the exact names and check that their values are UIDs.
// ---------------------------------------------------------------------------------------------

/** The scope UIDs of a WADO-URI query, read the one way the archive reads them. */
export interface WadoUids {
  /** `studyUID` (null when absent). */
  study: string | null
  series: string | null
  object: string | null
}

function uidOf(query: ParsedQuery, name: 'studyUID' | 'seriesUID' | 'objectUID'): string | null {
  const values = queryValues(query, name)
  // canonical-query.ts refuses a repeated WADO-URI scope name; a second value is never read.
  if (values.length > 1) throw new AmbiguousRequest('repeated_param')
  const value = values[0]
  if (value === undefined) return null
  // The decoded value must be a UID (digits and dots): the upstream receives it plain, re-serialised.
  if (!isStudyUid(value)) throw new BadRequest('bad_query')
  return value
}

/**
 * Read `studyUID`, `seriesUID`, `objectUID` from a parsed WADO-URI query (exact names only).
 * Throws BadRequest('bad_query') for a value that is not a well-formed UID.
 */
export function readWadoUids(query: ParsedQuery): WadoUids {
  return {
    study: uidOf(query, 'studyUID'),
    series: uidOf(query, 'seriesUID'),
    object: uidOf(query, 'objectUID'),
  }
}
