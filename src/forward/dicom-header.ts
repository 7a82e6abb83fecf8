// Forward stage, STOW-RS in `scoping: studies` (DESIGN §2 "never trust the upstream for scope"):
// read the StudyInstanceUID (0020,000D) and SOP Instance UID (0008,0018) of a DICOM Part 10 file
// (PS3.10 §7: 128-byte preamble, "DICM", File Meta group 0002 in explicit VR little endian, then
// the data set in its transfer syntax) from its first bytes, so tokengate decides which study a
// part goes to before any byte of it reaches the archive. Pure: the caller buffers the bytes.
//
// Read conservatively, so that what tokengate reads is what any archive's parser reads: top-level
// tags must be strictly ascending up to the pixel data (parsers differ on which of two equal tags
// they keep, so none may be there; past the reader's 1 MiB, DCMTK's first-wins stands), the
// meta group length (when given) must end where group 0002 ends, every VR must be a known one,
// the UIDs must be UI-valued and well-formed. Explicit and implicit VR little endian (and every
// encapsulated syntax, which is explicit VR little endian up to the pixel data) are read; deflated
// and big endian data sets are refused: their header cannot be read without another decoder.
import { isStudyUid } from '../token/study-sets.js'

export type HeaderRefusal =
  /** No "DICM" at offset 128, or a meta group that is not explicit VR little endian. */
  | 'not_part10'
  /** Deflated or big endian data set, or no transfer syntax in the meta group. */
  | 'transfer_syntax'
  /** Truncated, undefined lengths where none may be, unknown VR, tags out of order, bad UID. */
  | 'malformed'
  /** The data set has no StudyInstanceUID. */
  | 'no_study'

export type HeaderResult =
  | { kind: 'more' }
  | { kind: 'found'; study: string; sop: string | null }
  | { kind: 'refused'; why: HeaderRefusal }

const MORE: HeaderResult = { kind: 'more' }
const refused = (why: HeaderRefusal): HeaderResult => ({ kind: 'refused', why })

const STUDY_UID = 0x0020000d
const SOP_UID = 0x00080018
/** Pixel Data: the top-level tags are read up to here (what follows is image data). */
const PIXEL_DATA = 0x7fe00010
const META_GROUP_LENGTH = 0x00020000
const TRANSFER_SYNTAX = 0x00020010
const ITEM = 0xfffee000
const ITEM_END = 0xfffee00d
const SEQUENCE_END = 0xfffee0dd
const UNDEFINED = 0xffffffff
/** Nested sequences deeper than this are refused (no real header needs more). */
const MAX_DEPTH = 16

const IMPLICIT_LE = '1.2.840.10008.1.2'
const REFUSED_SYNTAXES = new Set([
  '1.2.840.10008.1.2.2', // explicit VR big endian (retired)
  '1.2.840.10008.1.2.1.99', // deflated explicit VR little endian
])

/** VRs whose explicit encoding has 2 reserved bytes and a 4-byte length (PS3.5 §7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV'])
const SHORT_VRS = new Set([
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'PN',
  'SH',
  'SL',
  'SS',
  'ST',
  'TM',
  'UI',
  'UL',
  'US',
])

/** Thrown inside the reader: the bytes end before the answer. */
const NEED_MORE = Symbol('need more')
class Refused {
  constructor(readonly why: HeaderRefusal) {}
}

interface Element {
  tag: number
  vr: string | null
  length: number
  /** Offset of the value. */
  at: number
}

class Reader {
  constructor(
    readonly buf: Buffer,
    readonly complete: boolean,
  ) {}

  need(end: number): void {
    if (end > this.buf.length) throw this.complete ? new Refused('malformed') : NEED_MORE
  }

  tag(pos: number): number {
    this.need(pos + 4)
    return ((this.buf.readUInt16LE(pos) << 16) | this.buf.readUInt16LE(pos + 2)) >>> 0
  }

  element(pos: number, explicit: boolean): Element {
    const tag = this.tag(pos)
    // Item and delimitation tags never carry a VR (PS3.5 §7.5).
    if (!explicit || tag >>> 16 === 0xfffe) {
      this.need(pos + 8)
      return { tag, vr: null, length: this.buf.readUInt32LE(pos + 4), at: pos + 8 }
    }
    this.need(pos + 8)
    const vr = this.buf.toString('latin1', pos + 4, pos + 6)
    if (SHORT_VRS.has(vr)) return { tag, vr, length: this.buf.readUInt16LE(pos + 6), at: pos + 8 }
    if (!LONG_VRS.has(vr)) throw new Refused('malformed')
    this.need(pos + 12)
    return { tag, vr, length: this.buf.readUInt32LE(pos + 8), at: pos + 12 }
  }

  /** A UI value: trailing NUL / space padding removed, then it must be a well-formed UID. */
  uid(el: Element): string {
    if (el.length === UNDEFINED || (el.vr !== null && el.vr !== 'UI')) throw new Refused('malformed')
    this.need(el.at + el.length)
    const text = this.buf.toString('latin1', el.at, el.at + el.length).replace(/[\0 ]+$/, '')
    if (!isStudyUid(text)) throw new Refused('malformed')
    return text
  }

  /** Skip an undefined-length sequence's items; returns the offset after its delimiter. */
  skipSequence(pos: number, explicit: boolean, depth: number): number {
    if (depth > MAX_DEPTH) throw new Refused('malformed')
    for (;;) {
      const item = this.element(pos, false)
      if (item.tag === SEQUENCE_END) return item.at
      if (item.tag !== ITEM) throw new Refused('malformed')
      if (item.length !== UNDEFINED) {
        pos = item.at + item.length
        continue
      }
      pos = this.skipDataset(item.at, explicit, depth + 1)
    }
  }

  /** Skip an undefined-length item's data set; returns the offset after its item delimiter. */
  skipDataset(pos: number, explicit: boolean, depth: number): number {
    for (;;) {
      const el = this.element(pos, explicit)
      if (el.tag === ITEM_END) return el.at
      pos = this.skipValue(el, explicit, depth)
    }
  }

  /** The offset after an element's value (sequences of undefined length read through). */
  skipValue(el: Element, explicit: boolean, depth: number): number {
    if (el.length !== UNDEFINED) return el.at + el.length
    // Undefined length: a sequence (SQ, implicit VR, or UN per CP-246: its items are implicit VR).
    if (el.vr === null || el.vr === 'SQ') return this.skipSequence(el.at, explicit, depth + 1)
    if (el.vr === 'UN') return this.skipSequence(el.at, false, depth + 1)
    throw new Refused('malformed') // encapsulated pixel data comes after the StudyInstanceUID
  }
}

/**
 * Read the StudyInstanceUID (and SOP Instance UID) of a Part 10 file from its first bytes.
 * `complete`: `buf` is the whole part (running out is then malformed, not "more"). `capped`: `buf`
 * is all the caller will hold of a longer part (the study, once read, then stands).
 *
 * After the study, the top-level tags are still read up to the pixel data (or the part's end, or
 * the cap) and must stay ascending: one archive's parser keeps the first of two StudyInstanceUIDs
 * (DCMTK), another the last, so a second one anywhere in reach is refused.
 */
export function readDicomHeader(buf: Buffer, complete: boolean, capped = false): HeaderResult {
  const r = new Reader(buf, complete)
  let found: HeaderResult | null = null
  try {
    r.need(132)
    if (buf.toString('latin1', 128, 132) !== 'DICM') return refused('not_part10')
    // File Meta Information: explicit VR little endian, group 0002, ascending (PS3.10 §7.1).
    let pos = 132
    let syntax: string | null = null
    let metaEnd: number | null = null
    let last = -1
    for (;;) {
      r.need(pos + 2)
      if (buf.readUInt16LE(pos) !== 0x0002) break
      const el = r.element(pos, true)
      if (el.tag <= last || el.length === UNDEFINED) return refused('not_part10')
      last = el.tag
      r.need(el.at + el.length)
      if (el.tag === META_GROUP_LENGTH) {
        if (el.length !== 4) return refused('not_part10')
        metaEnd = el.at + 4 + buf.readUInt32LE(el.at)
      }
      if (el.tag === TRANSFER_SYNTAX)
        syntax = buf.toString('latin1', el.at, el.at + el.length).replace(/[\0 ]+$/, '')
      pos = el.at + el.length
    }
    // A parser that trusts the group length starts the data set there: it must agree with ours.
    if (metaEnd !== null && metaEnd !== pos) return refused('not_part10')
    if (syntax === null || REFUSED_SYNTAXES.has(syntax)) return refused('transfer_syntax')
    const explicit = syntax !== IMPLICIT_LE
    let sop: string | null = null
    last = -1
    for (;;) {
      if (complete && pos === buf.length) return found ?? refused('no_study')
      const el = r.element(pos, explicit)
      if (el.tag <= last || el.tag >>> 16 === 0xfffe) return refused('malformed')
      last = el.tag
      if (found) {
        if (el.tag >= PIXEL_DATA) return found
      } else {
        if (el.tag > STUDY_UID) return refused('no_study')
        if (el.tag === SOP_UID) sop = r.uid(el)
        if (el.tag === STUDY_UID) found = { kind: 'found', study: r.uid(el), sop }
      }
      pos = r.skipValue(el, explicit, 0)
    }
  } catch (err) {
    if (err === NEED_MORE) return found && capped ? found : MORE
    if (err instanceof Refused) return refused(err.why)
    throw err
  }
}
