// Forward stage, STOW-RS in `scoping: studies`: the request body (multipart/related, PS3.18
// §10.5) passes through StowGuard on its way upstream. The guard splits it into parts as the
// archive will, holds each part back until its DICOM header (dicom-header.ts) names its study,
// asks `admit` whether that study may be written, and only then lets the part's bytes go on. A
// refused part (or a body tokengate cannot read as the archive would) errors the stream: undici
// aborts the upstream request, so no byte of that part reaches the archive.
//
// The bytes forwarded are the client's bytes, unchanged and in order, only delayed. The split
// follows Orthanc's MultipartStreamReader so both see the same parts: any `--boundary` in the body
// is a delimiter (it must follow CRLF, else the body is refused), a part's headers run to the first
// CRLFCRLF after its delimiter line, and a part `Content-Length` (which Orthanc would trust over
// the delimiters) is refused. Stricter than RFC 2046 where parsers differ: no preamble, no
// transport padding, nothing but whitespace after the close delimiter, a token boundary (quoted or
// not, and then its quoted form nowhere in the body).
import { Transform, type TransformCallback } from 'node:stream'
import { BadRequest } from '../errors.js'
import { readDicomHeader } from './dicom-header.js'

/** Part bytes held before the StudyInstanceUID must have been found (else the part is refused). */
export const MAX_PART_HEADER = 1024 * 1024
/** A part's MIME header block, and the epilogue after the close delimiter. */
const MAX_MIME_HEADERS = 16 * 1024
const MAX_EPILOGUE = 1024

/** What a part says about itself, as the archive will read it. */
export interface PartIdentity {
  study: string
  sop: string | null
}

/** Decides whether a part may go upstream; rejects (with a GateError) when it may not. */
export type Admit = (part: PartIdentity) => Promise<void>

// RFC 2046 bcharsnospace, minus `=` (Orthanc splits parameters on it) and the quote.
const BOUNDARY = /^[A-Za-z0-9'()+_,\-./:?]{1,70}$/

/**
 * The boundary of a multipart/related Content-Type, read so that Orthanc's reading (split on `;`
 * and `=`) and RFC 2045's agree; anything else is refused (bad_multipart). A quoted token is
 * unquoted (dicomweb-client quotes it); a parser that would not unquote it must then find no
 * delimiter at all, so the guard refuses a body that holds the quoted form (see StowGuard).
 */
export function stowBoundary(contentType: string | undefined): string {
  if (contentType === undefined) throw new BadRequest('bad_multipart')
  const [type, ...params] = contentType.split(';')
  if (type?.trim().toLowerCase() !== 'multipart/related') throw new BadRequest('bad_multipart')
  let boundary: string | null = null
  for (const param of params) {
    const eq = param.indexOf('=')
    const name = (eq === -1 ? param : param.slice(0, eq)).trim().toLowerCase()
    if (name !== 'boundary') continue
    let value = param.slice(eq + 1).trim()
    if (value.length > 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    if (eq === -1 || boundary !== null || !BOUNDARY.test(value)) throw new BadRequest('bad_multipart')
    boundary = value
  }
  if (boundary === null) throw new BadRequest('bad_multipart')
  return boundary
}

const CRLF = Buffer.from('\r\n')
const HEADERS_END = Buffer.from('\r\n\r\n')
const WHITESPACE = /^[\r\n\t ]*$/

type State =
  /** Before the first delimiter (only an optional CRLF may come first). */
  | 'start'
  /** Just after `--boundary`: `\r\n` (a part) or `--` (the end) must follow. */
  | 'delimiter'
  /** In a part's MIME headers. */
  | 'headers'
  /** In a part's body, held until its study is known and admitted. */
  | 'held'
  /** In an admitted part's body, streaming. */
  | 'open'
  /** After the close delimiter. */
  | 'closed'

/** Growable byte buffer for the held bytes (amortised O(n) appends, whatever the chunk size). */
class Bytes {
  data = Buffer.allocUnsafe(16 * 1024)
  length = 0

  append(chunk: Buffer): void {
    if (this.length + chunk.length > this.data.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.length + chunk.length))
      this.data.copy(grown, 0, 0, this.length)
      this.data = grown
    }
    chunk.copy(this.data, this.length)
    this.length += chunk.length
  }

  view(): Buffer {
    return this.data.subarray(0, this.length)
  }

  /** Take the first `n` bytes out (a copy), keeping the rest. */
  take(n: number): Buffer {
    const out = Buffer.from(this.data.subarray(0, n))
    this.data.copy(this.data, 0, n, this.length)
    this.length -= n
    return out
  }
}

/** The STOW-RS body guard (see the file header). `parts` counts the parts admitted so far. */
export class StowGuard extends Transform {
  private readonly dashBoundary: Buffer
  /** `--"boundary"`: what a parser that does not unquote the boundary would split on. */
  private readonly quotedDash: Buffer
  private quotedCarry: Buffer = Buffer.alloc(0)
  private state: State = 'start'
  private readonly held = new Bytes()
  /** Where the current part's body starts in `held` (state `held`). */
  private bodyAt = 0
  /** The next held length at which the DICOM header is read again (doubling: O(n) overall). */
  private nextTry = 0
  /** state `open`: the last bytes seen, which may be the start of a delimiter. */
  private carry: Buffer = Buffer.alloc(0)
  parts = 0
  /** A part has begun (its delimiter line was read): later delimiters must follow CRLF. */
  private seenPart = false

  constructor(
    boundary: string,
    private readonly admit: Admit,
  ) {
    super()
    this.dashBoundary = Buffer.from(`--${boundary}`, 'latin1')
    this.quotedDash = Buffer.from(`--"${boundary}"`, 'latin1')
  }

  /** Refuse the quoted delimiter anywhere in the body (a chunk, or across two). */
  private checkQuoted(chunk: Buffer): void {
    const n = this.quotedDash.length
    const seam = Buffer.concat([this.quotedCarry, chunk.subarray(0, n - 1)])
    if (seam.indexOf(this.quotedDash) !== -1 || chunk.indexOf(this.quotedDash) !== -1)
      throw new BadRequest('bad_multipart')
    const tail = chunk.length >= n - 1 ? chunk.subarray(chunk.length - (n - 1)) : seam
    this.quotedCarry = Buffer.from(tail.subarray(Math.max(0, tail.length - (n - 1))))
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.checkQuoted(chunk)
      if (this.state === 'open') this.stream(chunk)
      else this.held.append(chunk)
    } catch (err) {
      done(err as Error)
      return
    }
    this.advance(false).then(() => done(), done)
  }

  override _flush(done: TransformCallback): void {
    this.advance(true)
      .then(() => {
        if (this.state !== 'closed') throw new BadRequest('bad_multipart') // truncated body
        if (!WHITESPACE.test(this.held.view().toString('latin1'))) throw new BadRequest('bad_multipart')
        this.push(this.held.take(this.held.length))
      })
      .then(() => done(), done)
  }

  /** state `open`: pass the chunk on up to the next delimiter, which starts the held bytes again. */
  private stream(chunk: Buffer): void {
    const bytes = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk
    const at = bytes.indexOf(this.dashBoundary)
    if (at === -1) {
      const keep = Math.min(bytes.length, this.dashBoundary.length + 1)
      this.push(bytes.subarray(0, bytes.length - keep))
      this.carry = Buffer.from(bytes.subarray(bytes.length - keep))
      return
    }
    // Up to the CRLF before the delimiter: that CRLF is checked and sent with the next part.
    if (at < 2) throw new BadRequest('bad_multipart')
    const cut = at - 2
    this.push(bytes.subarray(0, cut))
    this.carry = Buffer.alloc(0)
    this.held.append(bytes.subarray(cut))
    this.state = 'delimiter'
    this.bodyAt = at - cut // offset of `--boundary` in held, checked in advance()
  }

  /** Run the state machine over the held bytes as far as they go. */
  private async advance(ended: boolean): Promise<void> {
    for (;;) {
      const bytes = this.held.view()
      switch (this.state) {
        case 'start': {
          const skip = bytes[0] === 0x0d ? 2 : 0
          if (bytes.length < skip + this.dashBoundary.length) {
            if (ended) throw new BadRequest('bad_multipart')
            return
          }
          if (skip && !bytes.subarray(0, 2).equals(CRLF)) throw new BadRequest('bad_multipart')
          if (!bytes.subarray(skip, skip + this.dashBoundary.length).equals(this.dashBoundary))
            throw new BadRequest('bad_multipart')
          this.bodyAt = skip
          this.state = 'delimiter'
          break
        }
        case 'delimiter': {
          // bodyAt: offset of `--boundary`; what precedes it (a part's end) must be CRLF.
          const dash = this.bodyAt
          const first = this.parts === 0 && !this.seenPart
          if ((!first || dash > 0) && (dash < 2 || !bytes.subarray(dash - 2, dash).equals(CRLF)))
            throw new BadRequest('bad_multipart')
          const after = dash + this.dashBoundary.length
          if (bytes.length < after + 2) {
            if (ended) throw new BadRequest('bad_multipart')
            return
          }
          const next = bytes.toString('latin1', after, after + 2)
          if (next === '--') {
            this.push(this.held.take(after + 2))
            this.state = 'closed'
            break
          }
          if (next !== '\r\n') throw new BadRequest('bad_multipart')
          this.bodyAt = after + 2
          this.seenPart = true
          this.state = 'headers'
          break
        }
        case 'headers': {
          const end = bytes.indexOf(HEADERS_END, this.bodyAt)
          if (end === -1) {
            if (ended || bytes.length - this.bodyAt > MAX_MIME_HEADERS) throw new BadRequest('bad_multipart')
            return
          }
          checkPartHeaders(bytes.toString('latin1', this.bodyAt, end))
          this.bodyAt = end + 4
          this.nextTry = 0
          this.state = 'held'
          break
        }
        case 'held': {
          const delimiter = bytes.indexOf(this.dashBoundary, this.bodyAt)
          const partEnd = delimiter === -1 ? bytes.length : delimiter
          const size = partEnd - this.bodyAt
          const complete = delimiter !== -1
          if (!complete && !ended && size < this.nextTry && size <= MAX_PART_HEADER) return
          // The part's bytes: up to the CRLF before its closing delimiter when that is in sight.
          const body = bytes.subarray(this.bodyAt, complete ? Math.max(this.bodyAt, partEnd - 2) : partEnd)
          const header = readDicomHeader(
            body.subarray(0, MAX_PART_HEADER),
            complete || ended,
            body.length >= MAX_PART_HEADER,
          )
          if (header.kind === 'refused') throw new BadRequest('bad_dicom')
          if (header.kind === 'more') {
            if (size >= MAX_PART_HEADER) throw new BadRequest('dicom_header_too_large')
            this.nextTry = Math.max(4096, size * 2)
            return
          }
          await this.admit({ study: header.study, sop: header.sop })
          this.parts++
          if (complete) {
            // The whole part is here: send it and go on with its delimiter (CRLF checked there).
            const cut = Math.max(this.bodyAt, delimiter - 2)
            this.push(this.held.take(cut))
            this.bodyAt = delimiter - cut
            this.state = 'delimiter'
            break
          }
          // Stream the rest; keep the tail that may be the start of a delimiter.
          const keep = Math.min(bytes.length - this.bodyAt, this.dashBoundary.length + 1)
          const sent = this.held.take(bytes.length - keep)
          this.carry = this.held.take(this.held.length)
          this.push(sent)
          this.state = 'open'
          return
        }
        case 'open':
          return
        case 'closed': {
          if (bytes.length > MAX_EPILOGUE || !WHITESPACE.test(bytes.toString('latin1')))
            throw new BadRequest('bad_multipart')
          return
        }
      }
    }
  }
}

/**
 * A part's MIME headers, read as Orthanc reads them (lines split on LF, name before the first
 * `:`, trimmed, any case): a Content-Length would replace the delimiters as the part's end, and a
 * Content-Transfer-Encoding other than binary would change its bytes; both are refused.
 */
function checkPartHeaders(block: string): void {
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':')
    if (colon === -1) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line
      .slice(colon + 1)
      .trim()
      .toLowerCase()
    if (name === 'content-length') throw new BadRequest('bad_multipart')
    if (name === 'content-transfer-encoding' && !['binary', '7bit', '8bit'].includes(value))
      throw new BadRequest('bad_multipart')
  }
}
