// Route match, path rules: the path below a mount read once, as every common server would read it,
// and re-serialised for the upstream (DESIGN §2, "the upstream sees exactly what tokengate
// decided"). Rules are matched on this canonical path, so `/%73tudies` needs what `/studies`
// needs. Segments that climb (`.`, `..`), or that some server (Tomcat, Jetty, IIS, Spring, a
// double-decoding proxy) would read as a dot segment or a different path, are refused before any
// lookup. The rule table is docs/request-rules.md.
import { AmbiguousRequest, BadRequest } from '../errors.js'

// pchar (RFC 3986 §3.3) minus `;` (path parameters to Tomcat/Jetty) and `%`: kept as they are.
const KEEP = /^[A-Za-z0-9\-._~!$&'()*+,=:@]$/
// A path made only of pchar and `/`: nothing to decode or re-encode (the fast path).
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]*$/
const ESCAPE = /%[0-9A-Fa-f]{2}/
// biome-ignore lint/suspicious/noControlCharactersInRegex: exactly what it looks for
const CONTROL = /[\x00-\x1f\x7f-\x9f]/
// Only dots and spaces: `..`, `...`, `.. ` (IIS and Windows drop trailing dots and spaces).
const DOTS = /^[.\s]+$/

function encodeSegment(decoded: string): string {
  let out = ''
  for (const ch of decoded) out += KEEP.test(ch) ? ch : encodeURIComponent(ch)
  return out
}

/** One segment that needs decoding: checked, and re-encoded with minimal escapes. */
function segment(raw: string): string {
  if (raw.includes(';')) throw new AmbiguousRequest('path_parameter')
  if (raw.includes('\\')) throw new BadRequest('bad_path')
  if (CONTROL.test(raw)) throw new AmbiguousRequest('control_char')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range itself
  if (/[^\x00-\x7f]/.test(raw)) throw new AmbiguousRequest('non_ascii')
  let decoded = raw
  if (raw.includes('%')) {
    try {
      decoded = decodeURIComponent(raw)
    } catch {
      throw new AmbiguousRequest('bad_escape')
    }
  }
  // A separator hidden behind an escape: `%2F`, `%5C`.
  if (decoded.includes('/') || decoded.includes('\\')) throw new BadRequest('bad_path')
  if (decoded === '.' || decoded === '..') throw new BadRequest('bad_path')
  if (CONTROL.test(decoded)) throw new AmbiguousRequest('control_char')
  if (decoded.includes(';')) throw new AmbiguousRequest('path_parameter')
  if (ESCAPE.test(decoded)) throw new AmbiguousRequest('double_encoding')
  if (DOTS.test(decoded) || DOTS.test(decoded.normalize('NFKC'))) throw new AmbiguousRequest('dot_segment')
  return encodeSegment(decoded)
}

/**
 * The canonical form of a raw path below a mount (`/studies/1.2.3`): each segment decoded once and
 * re-encoded with minimal escapes. Throws BadRequest('bad_path') for `.`/`..` (raw or escaped once),
 * an escaped separator or a backslash; AmbiguousRequest for a segment that reads as dots to some
 * server (`..;`, `..%00`, `%252e%252e`, `.. `), any `;`, control or raw non-ASCII character, a
 * double escape, an invalid escape, or an empty segment (`//`; a trailing `/` is kept).
 */
export function canonicalPath(raw: string): string {
  // Origin form only (RFC 9112 §3.2.1): `*` or an absolute URL under a root mount is no path.
  if (raw[0] !== '/') throw new BadRequest('bad_path')
  if (PLAIN_PATH.test(raw) && !raw.includes('/.') && !raw.includes('//')) return raw
  const segs = raw.split('/')
  let out = ''
  for (let i = 1; i < segs.length; i++) {
    const seg = segs[i] as string
    if (seg === '') {
      if (i === segs.length - 1) {
        out += '/'
        continue
      }
      throw new AmbiguousRequest('empty_segment')
    }
    if (seg === '.' || seg === '..') throw new BadRequest('bad_path')
    out += `/${PLAIN_PATH.test(seg) && !DOTS.test(seg) ? seg : segment(seg)}`
  }
  return out === '' ? '/' : out
}
