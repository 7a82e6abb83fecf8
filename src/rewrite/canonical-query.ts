// Rewrite stage, shared by route/, rewrite/ and studies mode: the one query parser (DESIGN §2,
// "the upstream sees exactly what tokengate decided"). It reads a raw query once, refuses what two
// common parsers (WHATWG URLSearchParams, Express `qs`, PHP, `;`-splitting CGI, Orthanc) could
// read differently (AmbiguousRequest, rule table in docs/request-rules.md), and gives every pair
// both its decoded value (what tokengate decides on) and its canonical spelling (what the
// upstream receives). The forwarded query is re-serialised from that, never the client's bytes.
import { AmbiguousRequest } from '../errors.js'

/** One `name=value` pair, read once. */
export interface QueryParam {
  /** The name, percent- and form-decoded (`+` is a space). Reserved names are exactly their spelling. */
  readonly name: string
  /** The value, percent- and form-decoded; '' when the pair has no `=`. */
  readonly value: string
  /** The pair as the upstream receives it: minimal escapes, a raw `+` kept as `+`. */
  readonly text: string
}

/** A parsed query: its pairs in order (empty pairs dropped) and their canonical serialisation. */
export interface ParsedQuery {
  readonly params: readonly QueryParam[]
  /** `params` joined with `&`; '' for none. No leading `?`. */
  readonly text: string
}

/**
 * Reserved names, each in the one spelling tokengate accepts (case-sensitive, as WADO-URI's are,
 * PS3.18 §9.1; the others are fixed by tokengate or PS3.18 §8.3.3.1 / §8.3.4.1). A name whose
 * skeleton (see `nameSkeleton`) equals one of these but whose bytes differ is refused.
 */
export const RESERVED_NAMES = Object.freeze([
  'album',
  'inbox',
  'accept',
  'studyUID',
  'seriesUID',
  'objectUID',
  'StudyInstanceUID',
  '0020000D',
] as const)
export type ReservedName = (typeof RESERVED_NAMES)[number]

/** Reserved names that must appear at most once (WADO-URI: upstreams take the first or the last). */
export const SINGLE_VALUED: ReadonlySet<string> = new Set<ReservedName>([
  'studyUID',
  'seriesUID',
  'objectUID',
])

const EXACT: ReadonlySet<string> = new Set<string>(RESERVED_NAMES)
const BY_SKELETON: ReadonlyMap<string, ReservedName> = new Map([
  ...RESERVED_NAMES.map((n) => [n.toLowerCase(), n] as const),
  // `x0020000D` (some toolkits' tag spelling); `0x…`, `(…,…)`, `…|…` fold in nameSkeleton.
  ['x0020000d', '0020000D'],
])

/**
 * What a parameter name reduces to for the reserved-name check: Unicode-folded (NFKC, upper then
 * lower case, so `ſ`, `ı`, `İ` and fullwidth letters fold to ASCII), the first bracket/dot root
 * (`album[]`, `[album]`, `album.x` → `album`, as qs and PHP read them), letters and digits only
 * (trims spaces, `+`, `_`, `-`, `,`, parentheses), and a `0x` tag prefix dropped
 * (`(0020,000D)`, `0x0020000D` → `0020000d`).
 */
export function nameSkeleton(name: string): string {
  let s = name
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range itself
  if (/[^\x00-\x7f]/.test(s)) s = s.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKD')
  else s = s.toLowerCase()
  // The first piece between brackets and dots that has a letter or digit (` [album]` too).
  let skeleton = ''
  for (const piece of s.split(/[[\].]/)) {
    skeleton = piece.replace(/[^a-z0-9]/g, '')
    if (skeleton !== '') break
  }
  if (skeleton.length === 10 && skeleton.startsWith('0x')) skeleton = skeleton.slice(2)
  return skeleton
}

/** The reserved name `name` reads as (exact or not), or null. */
export function reservedNameOf(name: string): ReservedName | null {
  if (EXACT.has(name)) return name as ReservedName
  // The shortest reserved skeleton has 5 characters: shorter names cannot fold onto one.
  if (name.length < 5) return null
  // Fast path: a name of letters and digits only is its own skeleton, lower-cased (a ten-character
  // one may be a `0x` tag, whose prefix the slow path drops).
  if (name.length !== 10 && ALNUM.test(name))
    return SKELETON_LENGTHS.has(name.length) ? (BY_SKELETON.get(name.toLowerCase()) ?? null) : null
  return BY_SKELETON.get(nameSkeleton(name)) ?? null
}

const ALNUM = /^[A-Za-z0-9]+$/
const SKELETON_LENGTHS: ReadonlySet<number> = new Set(RESERVED_NAMES.map((n) => n.length))

// Characters a query component keeps as they are (RFC 3986 §3.4 pchar / "/" / "?"), minus the
// form delimiters & = + # and ; (a separator to some parsers). Everything else is %XX (UTF-8).
const KEEP = /^[A-Za-z0-9\-._~!$'()*,:@/?]$/
const PLAIN_COMPONENT = /^[A-Za-z0-9\-._~!$'()*,:@/?]*$/
// A query made only of these (plus & = +) is already canonical: the fast path.
const PLAIN_QUERY = /^[A-Za-z0-9\-._~!$'()*,:@/?&=+]*$/
// A percent-escape left after one decoding: the text was encoded twice.
const ESCAPE = /%[0-9A-Fa-f]{2}/
// C0 controls, DEL and C1 controls (NUL included), read or ignored differently by every parser.
// biome-ignore lint/suspicious/noControlCharactersInRegex: exactly what it looks for
const CONTROL = /[\x00-\x1f\x7f-\x9f]/
// Characters that separate pairs in some parser (one that decodes before it splits): refused
// inside a decoded name.
const STRUCTURAL = /[&=;#]/

/** Percent-encode `s` (UTF-8) except the characters a query component may carry as they are. */
export function encodeQueryComponent(s: string): string {
  if (PLAIN_COMPONENT.test(s)) return s
  let out = ''
  for (const ch of s) out += KEEP.test(ch) ? ch : encodeURIComponent(ch)
  return out
}

/**
 * Percent-decode `raw` (no `+` handling); when it is not valid UTF-8, throw what `invalid` makes.
 * The one decoder of query parts, path segments and resource bindings.
 */
export function percentDecode(raw: string, invalid: () => Error): string {
  if (!raw.includes('%')) return raw
  try {
    return decodeURIComponent(raw)
  } catch {
    throw invalid()
  }
}

const badEscape = () => new AmbiguousRequest('bad_escape')

/** Percent-decode one `+`-free part; AmbiguousRequest('bad_escape') when it is not valid UTF-8. */
function decodePart(raw: string): string {
  return percentDecode(raw, badEscape)
}

/** A raw component read: its form-decoded text and its canonical spelling (`+` kept as `+`). */
function recode(raw: string): [decoded: string, canonical: string] {
  if (!raw.includes('%')) {
    const decoded = raw.includes('+') ? raw.replace(/\+/g, ' ') : raw
    let canonical = raw
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i] as string
      if (c !== '+' && !KEEP.test(c)) {
        canonical = raw.split('+').map(encodeQueryComponent).join('+')
        break
      }
    }
    return [decoded, canonical]
  }
  const parts = raw.split('+').map(decodePart)
  return [parts.join(' '), parts.map(encodeQueryComponent).join('+')]
}

function checkControl(decoded: string): void {
  if (CONTROL.test(decoded)) throw new AmbiguousRequest('control_char')
}

/** Read one pair that passed the fast-path test (only characters that need no escape). */
function plainPair(raw: string, eq: number): QueryParam {
  const rawName = eq === -1 ? raw : raw.slice(0, eq)
  const name = rawName.includes('+') ? rawName.replace(/\+/g, ' ') : rawName
  const reserved = reservedNameOf(name)
  if (reserved !== null && rawName !== reserved) throw new AmbiguousRequest('reserved_spelling')
  if (eq === -1) return { name, value: '', text: raw }
  const rawValue = raw.slice(eq + 1)
  const value = rawValue.includes('+') ? rawValue.replace(/\+/g, ' ') : rawValue
  // A second `=` is part of the value to every parser; canonical text escapes it all the same.
  if (rawValue.includes('=')) return { name, value, text: `${rawName}=${rawValue.replace(/=/g, '%3D')}` }
  return { name, value, text: raw }
}

/** Read one pair of a query that needs decoding. */
function pair(raw: string, eq: number): QueryParam {
  const rawName = eq === -1 ? raw : raw.slice(0, eq)
  const [name, nameText] = recode(rawName)
  checkControl(name)
  if (ESCAPE.test(name)) throw new AmbiguousRequest('double_encoding')
  if (STRUCTURAL.test(name)) throw new AmbiguousRequest('query_separator')
  const reserved = reservedNameOf(name)
  if (reserved !== null && rawName !== reserved) throw new AmbiguousRequest('reserved_spelling')
  if (eq === -1) return { name, value: '', text: nameText }
  const [value, valueText] = recode(raw.slice(eq + 1))
  checkControl(value)
  // A reserved value decides scope or permission: it must read the same decoded once or twice.
  if (reserved !== null && ESCAPE.test(value)) throw new AmbiguousRequest('double_encoding')
  return { name, value, text: `${nameText}=${valueText}` }
}

const EMPTY: ParsedQuery = Object.freeze({ params: Object.freeze([]), text: '' })

/**
 * Parse a raw query (without `?`). Throws AmbiguousRequest: `;` or `#` anywhere, a control
 * character (raw or escaped), raw non-ASCII, an invalid escape, a name escaped twice or holding a
 * separator, a reserved name spelled other than exactly, a single-valued reserved name repeated.
 */
export function parseQuery(raw: string): ParsedQuery {
  if (raw === '') return EMPTY
  const plain = PLAIN_QUERY.test(raw)
  if (!plain) {
    if (raw.includes(';')) throw new AmbiguousRequest('query_separator')
    if (raw.includes('#')) throw new AmbiguousRequest('fragment')
    checkControl(raw)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range itself
    if (/[^\x00-\x7f]/.test(raw)) throw new AmbiguousRequest('non_ascii')
  }
  const params: QueryParam[] = []
  let changed = false
  let seen: Set<string> | null = null
  let start = 0
  while (start <= raw.length) {
    let end = raw.indexOf('&', start)
    if (end === -1) end = raw.length
    if (end > start) {
      const text = raw.slice(start, end)
      const eq = text.indexOf('=')
      const param = plain ? plainPair(text, eq) : pair(text, eq)
      if (SINGLE_VALUED.has(param.name)) {
        seen ??= new Set()
        if (seen.has(param.name)) throw new AmbiguousRequest('repeated_param')
        seen.add(param.name)
      }
      if (param.text !== text) changed = true
      params.push(param)
    } else changed = true // an empty pair (`a&&b`, a leading or trailing `&`) is dropped
    start = end + 1
  }
  return { params, text: changed ? serializeQuery(params) : raw }
}

/**
 * The canonical query of `params` (their `text`, in order) followed by `extra` name/value pairs
 * encoded here; '' when there is nothing.
 */
export function serializeQuery(
  params: readonly QueryParam[],
  extra: readonly (readonly [string, string])[] = [],
): string {
  let out = ''
  for (const p of params) out = out === '' ? p.text : `${out}&${p.text}`
  for (const [name, value] of extra) {
    const text = `${encodeQueryComponent(name)}=${encodeQueryComponent(value)}`
    out = out === '' ? text : `${out}&${text}`
  }
  return out
}

/** The values of every pair named exactly `name`, in order. */
export function queryValues(query: ParsedQuery, name: string): string[] {
  const out: string[] = []
  for (const p of query.params) if (p.name === name) out.push(p.value)
  return out
}
