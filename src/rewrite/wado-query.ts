// Rewrite stage, WADO-URI query normalisation (per mount, `wadoNormalizeQuery`): re-encode each
// value with the fewest escapes RFC 3986 §3.4 allows in a query, so `contentType=image%2Fjpeg`
// reaches the upstream as `contentType=image/jpeg`. Orthanc 1.10 rejects the encoded form (it
// does not decode the value before comparing); other upstreams never see this rewrite.

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
