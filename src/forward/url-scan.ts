// Forward stage, response bodies: the URL rewrite of a whole DICOM JSON body that holds no JSON
// escape (no backslash anywhere), without lexing it. Without escapes every `"` delimits a string,
// so each occurrence of an upstream prefix right after a quote can be placed by reading backwards
// from it: `"BulkDataURI": "<here>`, or an element of the `Value` array of an object that is the
// value of `"00081190"` (RetrieveURL). Such a body is rewritten exactly as the lexer
// (url-rewriter.ts) would rewrite it — a property test holds the two to the same output — at the
// cost of a few indexOf calls instead of a pass over every byte. For valid JSON; a body that is
// not JSON may come out differently (it holds no URL the lexer would find either way).
import type { UrlRewrite } from '../rewrite/response-urls.js'

/** Longer strings are no URL we rewrite: passed through as they are (bounds memory). */
export const MAX_URL = 64 * 1024

const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const LBRACE = 0x7b
const RBRACE = 0x7d

/** The DICOM JSON keys around the URLs, as bytes (the lexer in url-rewriter.ts compares them too). */
export const RETRIEVE_URL = Buffer.from('00081190')
export const BULK_DATA_URI = Buffer.from('BulkDataURI')
export const VALUE = Buffer.from('Value')

/** Rewrite one URL (already JSON-decoded) by the first matching base; unchanged when none matches. */
export function rewriteUrl(url: string, spec: UrlRewrite): string {
  for (const [from, to] of spec.bases) {
    if (!url.startsWith(from)) continue
    const next = url.charCodeAt(from.length)
    // Only at a path boundary: `/dicom-web` must not match `/dicom-webx`.
    if (Number.isNaN(next) || next === 0x2f || next === 0x3f || next === 0x23)
      return to + url.slice(from.length)
  }
  return url
}

/** JSON whitespace (RFC 8259 §2). */
function isWhitespace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d
}

/** The last index ≤ i that is not whitespace (-1: none). */
function back(body: Buffer, i: number): number {
  while (i >= 0 && isWhitespace(body[i])) i--
  return i
}

/** Whether body[start, end) is exactly `word`. */
export function isWord(body: Buffer, start: number, end: number, word: Buffer): boolean {
  return end - start === word.length && body.compare(word, 0, word.length, start, end) === 0
}

/**
 * The first index of the value that ends at `end` (a string, a container, a number or literal),
 * or -1 when it cannot be read. No escapes: a quote always delimits a string.
 */
function valueStart(body: Buffer, end: number): number {
  const last = body[end]
  if (last === QUOTE) return body.lastIndexOf(QUOTE, end - 1)
  if (last === RBRACKET || last === RBRACE) {
    let depth = 0
    for (let i = end; i >= 0; i--) {
      const b = body[i]
      if (b === QUOTE) {
        i = body.lastIndexOf(QUOTE, i - 1)
        if (i === -1) return -1
      } else if (b === RBRACKET || b === RBRACE) depth++
      else if (b === LBRACKET || b === LBRACE) {
        depth--
        if (depth === 0) return i
      }
    }
    return -1
  }
  // A number, true, false or null.
  let i = end
  while (i > 0) {
    const b = body[i - 1]
    if (b === COMMA || b === COLON || b === LBRACKET || b === LBRACE || isWhitespace(b)) break
    i--
  }
  return i
}

/** The key a member value starts after (`"<key>" : ` before `at`): its [start, end), or null. */
function keyBefore(body: Buffer, at: number): [number, number] | null {
  const colon = back(body, at - 1)
  if (body[colon] !== COLON) return null
  const close = back(body, colon - 1)
  if (body[close] !== QUOTE) return null
  const open = body.lastIndexOf(QUOTE, close - 1)
  return open === -1 ? null : [open + 1, close]
}

/**
 * From the first index of an array element or object member, back over the earlier ones to the
 * container's opening bracket: its index, or -1. `members`: object members (`"key": value`).
 */
function openingOf(body: Buffer, first: number, members: boolean): number {
  let i = back(body, first - 1)
  while (body[i] === COMMA) {
    let start = valueStart(body, back(body, i - 1))
    if (start === -1) return -1
    if (members) {
      const key = keyBefore(body, start)
      if (!key) return -1
      start = key[0] - 1
    }
    i = back(body, start - 1)
  }
  return i
}

/** Whether the string whose opening quote is at `quote` is a URL the lexer rewrites. */
function atUrlPosition(body: Buffer, quote: number): boolean {
  // `"BulkDataURI": "<url>"`: a member value (a string before a colon is always a key).
  const key = keyBefore(body, quote)
  if (key) return isWord(body, key[0], key[1], BULK_DATA_URI)
  // An element of `"00081190": { …, "Value": [ …, "<url>", … ], … }`.
  const array = openingOf(body, quote, false)
  if (body[array] !== LBRACKET) return false
  const valueKey = keyBefore(body, array)
  if (!valueKey || !isWord(body, valueKey[0], valueKey[1], VALUE)) return false
  const object = openingOf(body, valueKey[0] - 1, true)
  if (body[object] !== LBRACE) return false
  const tagKey = keyBefore(body, object)
  return tagKey !== null && isWord(body, tagKey[0], tagKey[1], RETRIEVE_URL)
}

/**
 * The rewritten body, or null when no URL changed. Only for a body without a backslash (the
 * caller checks): then it equals the lexer's output for valid JSON.
 */
export function rewriteUnescaped(body: Buffer, spec: UrlRewrite, needles: readonly Buffer[]): Buffer | null {
  const starts = new Set<number>()
  for (const needle of needles) {
    for (let at = body.indexOf(needle); at !== -1; at = body.indexOf(needle, at + 1)) {
      if (body[at - 1] === QUOTE && !starts.has(at) && atUrlPosition(body, at - 1)) starts.add(at)
    }
  }
  if (starts.size === 0) return null
  const out: Buffer[] = []
  let from = 0
  for (const start of [...starts].sort((a, b) => a - b)) {
    const end = body.indexOf(QUOTE, start)
    if (end === -1 || end - start > MAX_URL) continue
    const raw = body.toString('utf8', start, end)
    const rewritten = rewriteUrl(raw, spec)
    if (rewritten === raw) continue
    out.push(body.subarray(from, start), Buffer.from(rewritten, 'utf8'))
    from = end
  }
  if (out.length === 0) return null
  out.push(body.subarray(from))
  return Buffer.concat(out)
}
