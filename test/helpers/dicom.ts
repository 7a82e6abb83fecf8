// Synthetic DICOM Part 10 files and STOW-RS bodies for tests of the STOW-RS part guard: a
// preamble, "DICM", a File Meta group and a data set in explicit or implicit VR little endian,
// with sequences of defined or undefined length. Small on purpose: only what the header reader
// must get through (real files come from Orthanc in the integration tests).
// Usage: part10({ elements: [uid(0x00080018, '1.2'), uid(0x0020000d, '1.3')] })

export const EXPLICIT_LE = '1.2.840.10008.1.2.1'
export const IMPLICIT_LE = '1.2.840.10008.1.2'

export interface Element {
  tag: number
  vr: string
  /** Bytes, or the items of a sequence (each item a list of elements). */
  value: Buffer | Element[][]
  /** Sequence and its items written with undefined length and delimiters. */
  undefinedLength?: boolean
}

const LONG = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV'])

function pad(text: string, padByte: string): Buffer {
  return Buffer.from(text.length % 2 ? text + padByte : text, 'latin1')
}

export function uid(tag: number, value: string): Element {
  return { tag, vr: 'UI', value: pad(value, '\0') }
}

export function text(tag: number, vr: string, value: string): Element {
  return { tag, vr, value: pad(value, ' ') }
}

function tagBytes(tag: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt16LE(tag >>> 16, 0)
  b.writeUInt16LE(tag & 0xffff, 2)
  return b
}

function head(tag: number, vr: string | null, length: number): Buffer {
  if (vr === null) {
    const b = Buffer.alloc(8)
    tagBytes(tag).copy(b)
    b.writeUInt32LE(length >>> 0, 4)
    return b
  }
  if (LONG.has(vr)) {
    const b = Buffer.alloc(12)
    tagBytes(tag).copy(b)
    b.write(vr, 4, 'latin1')
    b.writeUInt32LE(length >>> 0, 8)
    return b
  }
  const b = Buffer.alloc(8)
  tagBytes(tag).copy(b)
  b.write(vr, 4, 'latin1')
  b.writeUInt16LE(length, 6)
  return b
}

export function encode(elements: Element[], explicit: boolean): Buffer {
  const out: Buffer[] = []
  for (const el of elements) {
    if (Buffer.isBuffer(el.value)) {
      out.push(head(el.tag, explicit ? el.vr : null, el.value.length), el.value)
      continue
    }
    const items = el.value.map((item) => {
      const body = encode(item, explicit)
      return el.undefinedLength
        ? Buffer.concat([head(0xfffee000, null, 0xffffffff), body, head(0xfffee00d, null, 0)])
        : Buffer.concat([head(0xfffee000, null, body.length), body])
    })
    const seq = Buffer.concat(items)
    if (el.undefinedLength) {
      out.push(head(el.tag, explicit ? 'SQ' : null, 0xffffffff), seq, head(0xfffee0dd, null, 0))
    } else {
      out.push(head(el.tag, explicit ? 'SQ' : null, seq.length), seq)
    }
  }
  return Buffer.concat(out)
}

export interface Part10Input {
  syntax?: string
  elements: Element[]
  /** Write (0002,0000) (default true); a number writes that value instead of the true length. */
  groupLength?: boolean | number
}

export function part10(input: Part10Input): Buffer {
  const syntax = input.syntax ?? EXPLICIT_LE
  const meta = encode(
    [uid(0x00020002, '1.2.840.10008.5.1.4.1.1.7'), uid(0x00020003, '1.2.3.4.5'), uid(0x00020010, syntax)],
    true,
  )
  const parts: Buffer[] = [Buffer.alloc(128), Buffer.from('DICM', 'latin1')]
  if (input.groupLength !== false) {
    const length = Buffer.alloc(4)
    length.writeUInt32LE(typeof input.groupLength === 'number' ? input.groupLength : meta.length)
    parts.push(head(0x00020000, 'UL', 4), length)
  }
  parts.push(meta, encode(input.elements, syntax !== IMPLICIT_LE))
  return Buffer.concat(parts)
}

/** A plain instance: SOP Instance UID, a few attributes, the study, the series, pixel-ish data. */
export function instance(study: string, sop: string, syntax = EXPLICIT_LE): Buffer {
  return part10({
    syntax,
    elements: [
      uid(0x00080016, '1.2.840.10008.5.1.4.1.1.7'),
      uid(0x00080018, sop),
      text(0x00080060, 'CS', 'OT'),
      text(0x00100010, 'PN', 'TEST^PATIENT'),
      uid(0x0020000d, study),
      uid(0x0020000e, `${study}.1`),
      { tag: 0x7fe00010, vr: 'OB', value: Buffer.alloc(64, 7) },
    ],
  })
}

/** A multipart/related STOW-RS body of `parts`. */
export function stowBody(parts: Buffer[], boundary = 'tg-boundary'): { body: Buffer; type: string } {
  const chunks = parts.flatMap((p) => [
    Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
    p,
    Buffer.from('\r\n'),
  ])
  return {
    body: Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]),
    type: `multipart/related; type="application/dicom"; boundary=${boundary}`,
  }
}
