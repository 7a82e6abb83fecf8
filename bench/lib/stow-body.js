// A minimal STOW-RS body for load and chaos runs: one DICOM Part 10 instance (explicit VR little
// endian: preamble, "DICM", File Meta group, SOP/Study/Series UIDs and a little pixel data) in a
// multipart/related body, so the STOW-RS part guard (src/forward/stow.ts) reads and admits it.
// The tests' richer builder is test/helpers/dicom.ts; this one stays plain JS for bench/.

const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT'])

/** @param {number} tag @param {string} vr @param {Buffer} value */
function element(tag, vr, value) {
  const long = LONG.has(vr)
  const head = Buffer.alloc(long ? 12 : 8)
  head.writeUInt16LE(tag >>> 16, 0)
  head.writeUInt16LE(tag & 0xffff, 2)
  head.write(vr, 4, 'latin1')
  if (long) head.writeUInt32LE(value.length, 8)
  else head.writeUInt16LE(value.length, 6)
  return Buffer.concat([head, value])
}

/** @param {string} uid */
const ui = (uid) => Buffer.from(uid.length % 2 ? `${uid}\0` : uid, 'latin1')

/**
 * One instance of `study` with SOP Instance UID `sop`.
 * @param {string} study @param {string} sop
 */
export function part10(study, sop) {
  const meta = Buffer.concat([
    element(0x00020002, 'UI', ui('1.2.840.10008.5.1.4.1.1.7')),
    element(0x00020003, 'UI', ui(sop)),
    element(0x00020010, 'UI', ui('1.2.840.10008.1.2.1')),
  ])
  const length = Buffer.alloc(4)
  length.writeUInt32LE(meta.length)
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    element(0x00020000, 'UL', length),
    meta,
    element(0x00080016, 'UI', ui('1.2.840.10008.5.1.4.1.1.7')),
    element(0x00080018, 'UI', ui(sop)),
    element(0x0020000d, 'UI', ui(study)),
    element(0x0020000e, 'UI', ui(`${study}.1`)),
    element(0x7fe00010, 'OB', Buffer.alloc(64, 7)),
  ])
}

/**
 * A multipart/related STOW-RS body of one instance, and its Content-Type.
 * @param {string} study @param {string} sop
 */
export function stowBody(study, sop, boundary = 'tg-bench-boundary') {
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
    part10(study, sop),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ])
  return { body, type: `multipart/related; type="application/dicom"; boundary=${boundary}` }
}
