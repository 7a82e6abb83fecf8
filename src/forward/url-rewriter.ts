// Forward stage, response bodies: a streaming Transform over DICOM JSON (PS3.18 Annex F) that
// rewrites the URLs an upstream writes into its answers — RetrieveURL (0008,1190) values and
// BulkDataURI strings — from the upstream's base to tokengate's public one, so a client that
// follows them comes back through tokengate (and, for link requests, keeps its /link/<token>/).
// Forwarder-agnostic: any forwarder pipes the upstream body through it.
//
// It is a small JSON lexer, not a parser: every byte passes through unchanged except the contents
// of the strings it rewrites, so formatting, key order and numbers are untouched and memory stays
// bounded by one URL (a string longer than MAX_URL passes through as it is). Input that is not
// JSON is passed through byte for byte (the lexer may then rewrite nothing).
import { Transform, type TransformCallback } from 'node:stream'
import type { UrlRewrite } from '../rewrite/response-urls.js'
import { stringEnd } from './json-scan.js'
import {
  BULK_DATA_URI as BULK_DATA_URI_BYTES,
  isWord,
  MAX_URL,
  RETRIEVE_URL as RETRIEVE_URL_BYTES,
  rewriteUnescaped,
  rewriteUrl,
  VALUE as VALUE_BYTES,
} from './url-scan.js'

export type { UrlRewrite }
export { rewriteUrl }

const RETRIEVE_URL = '00081190'
const BULK_DATA_URI = 'BulkDataURI'
const VALUE = 'Value'
/** Longer keys are no key we look for. */
const MAX_KEY = 32

const QUOTE = 0x22

/** The keys that matter; every other key is Other. */
enum Key {
  Other,
  Value,
  RetrieveUrl,
  BulkDataUri,
}

/**
 * An open container, as one small integer (no object per `{` or `[`): bit 0 set for an object,
 * the key it is the value of (Other in an array or at the top) above it. NO_FRAME: none open.
 */
type Frame = number
const NO_FRAME: Frame = -1
const frame = (object: boolean, key: Key): Frame => (key << 1) | (object ? 1 : 0)
const isObject = (f: Frame): boolean => f >= 0 && (f & 1) === 1
const keyOf = (f: Frame): Key => f >> 1

function classifyKey(text: string): Key {
  if (text === VALUE) return Key.Value
  if (text === BULK_DATA_URI) return Key.BulkDataUri
  return text.length === 8 && text.toUpperCase() === RETRIEVE_URL ? Key.RetrieveUrl : Key.Other
}

/**
 * classifyKey over chunk[start, end), by comparing bytes: no string per key (every DICOM JSON
 * attribute has an 8-byte key). RetrieveURL's tag is all digits, so its case needs no folding.
 */
function keyAt(chunk: Buffer, start: number, end: number): Key {
  if (isWord(chunk, start, end, VALUE_BYTES)) return Key.Value
  if (isWord(chunk, start, end, RETRIEVE_URL_BYTES)) return Key.RetrieveUrl
  if (isWord(chunk, start, end, BULK_DATA_URI_BYTES)) return Key.BulkDataUri
  return Key.Other
}

/** The rewritten raw JSON string contents (escapes kept valid), or null when unchanged. */
function rewriteRaw(raw: string, spec: UrlRewrite): string | null {
  if (!raw.includes('\\')) {
    const out = rewriteUrl(raw, spec)
    return out === raw ? null : out
  }
  let decoded: string
  try {
    decoded = JSON.parse(`"${raw}"`) as string
  } catch {
    return null // not a valid JSON string: leave it alone
  }
  const out = rewriteUrl(decoded, spec)
  return out === decoded ? null : JSON.stringify(out).slice(1, -1)
}

/**
 * The lexer: rewrites RetrieveURL and BulkDataURI values of DICOM JSON fed to it chunk by chunk.
 * Used by the streaming Transform below and, on a small body read whole, directly.
 */
class UrlLexer {
  /** Whether any URL was rewritten so far (false: the output equals the input). */
  changed = false
  private readonly stack: Frame[] = []
  /** The innermost open container (NO_FRAME: none). */
  private top(): Frame {
    const n = this.stack.length
    return n === 0 ? NO_FRAME : (this.stack[n - 1] as Frame)
  }

  /** Inside a string; `escaped` when the previous chunk ended inside an escape in it. */
  private inString = false
  escaped = false
  /** What the current string is: a key (collected), a URL (held back) or anything else (passed). */
  private stringRole: 'key' | 'url' | 'other' = 'other'
  /** In an object, whether the next string is a key. */
  private expectKey = false
  /** The last key read in the innermost object, as far as this rewriter cares. */
  private key: Key = Key.Other
  /** A key split across chunks, collected; null once the key was classified from its bytes. */
  private keyText: string | null = ''
  private held: Buffer[] = []
  private heldBytes = 0

  constructor(private readonly spec: UrlRewrite) {}

  /** The bytes of `chunk` to emit now (null: none; a URL may be held back until it ends). */
  feed(chunk: Buffer): Buffer | null {
    const out: Buffer[] = []
    let from = 0 // start of the bytes not yet emitted (or held)
    let i = 0
    const n = chunk.length
    while (i < n) {
      if (this.inString) {
        // Find the closing quote, honouring escapes (which may straddle chunks).
        const start = i
        const end = stringEnd(chunk, i, this)
        const stop = end === -1 ? n : end
        if (this.stringRole === 'key') {
          if (end !== -1 && this.keyText === '') {
            // The whole key is in this chunk (nearly always): classify it without a string.
            this.keyText = null
            this.key = keyAt(chunk, start, stop)
          } else if (this.keyText !== null && this.keyText.length <= MAX_KEY) {
            this.keyText += chunk.toString('latin1', start, stop)
          }
        } else if (this.stringRole === 'url') {
          // Held back from `start` (== from: the opening quote was emitted) until the string ends.
          this.hold(chunk.subarray(start, stop), out)
          from = stop
        }
        if (end === -1) break
        this.endString(out)
        if (this.stringRole === 'url') from = end // the closing quote is emitted with what follows
        i = end + 1
        continue
      }
      const b = chunk[i] as number
      switch (b) {
        case QUOTE:
          this.startString()
          i++
          if (this.stringRole === 'url') {
            out.push(chunk.subarray(from, i)) // up to and including the opening quote
            from = i
          }
          continue
        case 0x7b: // {
          this.stack.push(frame(true, this.valueKey()))
          this.expectKey = true
          this.key = Key.Other
          break
        case 0x5b: // [
          this.stack.push(frame(false, this.valueKey()))
          this.expectKey = false
          break
        case 0x7d: // }
        case 0x5d: // ]
          this.stack.pop()
          this.restoreContext()
          break
        case 0x3a: // :
          this.expectKey = false
          break
        case 0x2c: // ,
          this.expectKey = isObject(this.top())
          break
      }
      i++
    }
    if (!(this.inString && this.stringRole === 'url')) out.push(chunk.subarray(from))
    if (out.length === 0) return null
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out)
  }

  /** At the end of the input: a truncated document gets back what was held, unchanged. */
  end(): Buffer | null {
    const rest = this.held.length ? Buffer.concat(this.held) : null
    this.held = []
    return rest
  }

  /** The key a container or string opened now is the value of (Other inside an array). */
  private valueKey(): Key {
    return isObject(this.top()) ? this.key : Key.Other
  }

  /** After a container closes, only `,` or a close can follow: no key is current. */
  private restoreContext(): void {
    this.expectKey = false
    this.key = Key.Other
  }

  private startString(): void {
    this.inString = true
    this.escaped = false
    const top = this.top()
    if (isObject(top) && this.expectKey) {
      this.stringRole = 'key'
      this.keyText = ''
    } else if (this.isUrlPosition(top)) {
      this.stringRole = 'url'
      this.held = []
      this.heldBytes = 0
    } else {
      this.stringRole = 'other'
    }
  }

  /** `"BulkDataURI": "<here>"`, or `"00081190": { "Value": [ "<here>", … ] }`. */
  private isUrlPosition(top: Frame): boolean {
    if (top === NO_FRAME) return false
    if (isObject(top)) return this.key === Key.BulkDataUri
    const n = this.stack.length
    const parent = n >= 2 ? (this.stack[n - 2] as Frame) : NO_FRAME
    return keyOf(top) === Key.Value && isObject(parent) && keyOf(parent) === Key.RetrieveUrl
  }

  private hold(part: Buffer, out: Buffer[]): void {
    if (part.length === 0) return
    if (this.stringRole !== 'url') return
    this.held.push(part)
    this.heldBytes += part.length
    if (this.heldBytes > MAX_URL) {
      // Too long for a URL: give it back unchanged and pass the rest of the string through.
      out.push(...this.held)
      this.held = []
      this.stringRole = 'other'
    }
  }

  private endString(out: Buffer[]): void {
    this.inString = false
    if (this.stringRole === 'key') {
      if (this.keyText !== null)
        this.key = this.keyText.length <= MAX_KEY ? classifyKey(this.keyText) : Key.Other
      return
    }
    if (this.stringRole === 'url') {
      // Nearly always one part (the whole URL in one chunk): no copy.
      const held = this.held.length === 1 ? (this.held[0] as Buffer) : Buffer.concat(this.held)
      const rewritten = rewriteRaw(held.toString('utf8'), this.spec)
      if (rewritten !== null) this.changed = true
      out.push(rewritten === null ? held : Buffer.from(rewritten, 'utf8'))
      this.held = []
    }
  }
}

/** A Transform that rewrites RetrieveURL and BulkDataURI values in a DICOM JSON byte stream. */
export class DicomJsonUrlRewriter extends Transform {
  private readonly lexer: UrlLexer

  constructor(spec: UrlRewrite) {
    super()
    this.lexer = new UrlLexer(spec)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = this.lexer.feed(chunk)
    if (out) this.push(out)
    done()
  }

  override _flush(done: TransformCallback): void {
    const rest = this.lexer.end()
    if (rest) this.push(rest)
    done()
  }
}

const BACKSLASH = 0x5c

/**
 * The same rewrite over a whole body held in memory (small answers): no stream machinery. Null
 * when no URL changed, so the caller can send the upstream's bytes and headers as they are.
 */
export function rewriteDicomJsonUrls(body: Buffer, spec: UrlRewrite): Buffer | null {
  // Most answers hold no JSON escape: then the upstream prefixes are found with indexOf and
  // placed by reading back from each (url-scan.ts); none there, nothing to rewrite. Otherwise lex.
  if (!body.includes(BACKSLASH))
    return rewriteUnescaped(body, spec, spec.needles ?? spec.bases.map(([from]) => Buffer.from(from)))
  const lexer = new UrlLexer(spec)
  const out = lexer.feed(body)
  const rest = lexer.end()
  if (!lexer.changed) return null
  if (!rest) return out ?? Buffer.alloc(0)
  return out ? Buffer.concat([out, rest]) : rest
}

/** The content types whose bodies are DICOM JSON (or plain JSON, as some upstreams label it). */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType) return false
  // The usual spellings first, without a split or a lower-cased copy.
  if (contentType === 'application/dicom+json' || contentType === 'application/json') return true
  const semi = contentType.indexOf(';')
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
  return type === 'application/dicom+json' || type === 'application/json'
}
