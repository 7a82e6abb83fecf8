// Rewrite stage, WADO-URI query normalisation (per mount, `wadoNormalizeQuery`): re-encode each
// value with the fewest escapes RFC 3986 §3.4 allows in a query, so `contentType=image%2Fjpeg`
// reaches the upstream as `contentType=image/jpeg`. Orthanc 1.10 rejects the encoded form (it
// does not decode the value before comparing); other upstreams never see this rewrite. And, for
// `scoping: studies`, the one reading of the WADO-URI scope parameters (readWadoUids, below).

import { BadRequest } from '../errors.js'
import { isStudyUid } from '../token/study-sets.js'

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
// reads only the exact name (after one percent-decoding); a proxy that folded case or trimmed
// would check one parameter and let the archive read another. So: the exact name is the only
// spelling read, and any other spelling that could be taken for it by some parser — case-folded,
// percent-decoded once or twice, `+` or spaces trimmed, `[]` stripped — is refused as ambiguous,
// as is an exact name given twice. (When rewrite/canonical-query.ts lands, its near-spelling fold
// replaces nearSpelling() below; the exact-name rule stays here.)
// ---------------------------------------------------------------------------------------------

/** The WADO-URI parameters that carry scope, by their exact (case-sensitive) names. */
export const WADO_UID_PARAMS = ['studyUID', 'seriesUID', 'objectUID'] as const
type WadoUidParam = (typeof WADO_UID_PARAMS)[number]
const FOLDED = new Map<string, WadoUidParam>(WADO_UID_PARAMS.map((p) => [p.toLowerCase(), p]))

function decodeLoose(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** What any common parser could make of a raw name: decoded (twice), `+` as space, trimmed, `[]` dropped, folded. */
export function nearSpelling(rawName: string): string {
  let name = rawName.replace(/\+/g, ' ')
  name = decodeLoose(decodeLoose(name).replace(/\+/g, ' '))
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL and controls are what some parsers trim
  name = name.replace(/[\s\x00-\x1f]+/g, '').replace(/\[\]$/, '')
  return name.toLowerCase()
}

/** The scope UIDs of a WADO-URI query, read the one way the archive reads them. */
export interface WadoUids {
  /** `studyUID` (null when absent). */
  study: string | null
  series: string | null
  object: string | null
}

/**
 * Read `studyUID`, `seriesUID`, `objectUID` from a raw WADO-URI query. Throws
 * BadRequest('ambiguous_request') for a near-spelling of one of them or one given twice, and
 * BadRequest('bad_query') for a value that is not a well-formed UID as it is (no escapes).
 */
export function readWadoUids(query: string): WadoUids {
  const out: WadoUids = { study: null, series: null, object: null }
  if (query === '') return out
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=')
    const raw = eq === -1 ? pair : pair.slice(0, eq)
    const exact = (WADO_UID_PARAMS as readonly string[]).includes(raw) ? (raw as WadoUidParam) : null
    if (!exact) {
      if (FOLDED.has(nearSpelling(raw))) throw new BadRequest('ambiguous_request')
      continue
    }
    const key = exact === 'studyUID' ? 'study' : exact === 'seriesUID' ? 'series' : 'object'
    if (out[key] !== null) throw new BadRequest('ambiguous_request')
    // A UID is digits and dots: no escape is needed, so none is read (no decoding to differ on).
    const value = eq === -1 ? '' : pair.slice(eq + 1)
    if (!isStudyUid(value)) throw new BadRequest('bad_query')
    out[key] = value
  }
  return out
}
