// Generated inputs (DESIGN §2 "never trust the upstream for scope"): STOW-RS bodies of Part 10
// parts with random transfer syntaxes, random elements and sequences before the study, duplicated
// and out-of-order tags, truncations, byte flips, boundary look-alikes and random chunking, run
// through the part guard with an admission that allows one study only. Invariants: the guard
// never fails with anything but a GateError (a 4xx/409, never a 5xx); what it lets out is a prefix
// of the client's bytes; and no part of that output, split as Orthanc splits it, carries the
// foreign StudyInstanceUID where an independent reader (dicom-parser) could read it as the study. 300 cases in npm test;
// `npm run test:fuzz` (TG_FUZZ_RUNS=10000) for the full run.
import dicomParser from 'dicom-parser'
import t from 'tap'
import { Conflict, GateError } from '../../src/errors.js'
import { type Element, encode, IMPLICIT_LE, part10, text, uid } from '../helpers/dicom.js'
import { chance, forAll, int, pick, type Rng, runs } from '../helpers/generate.js'
import { runGuard } from '../helpers/stow-guard.js'

const OURS = '1.2.840.99.1'
const FOREIGN = '1.2.840.99.7'
const BOUNDARY = 'b0undary'
const SYNTAXES = [
  '1.2.840.10008.1.2.1',
  IMPLICIT_LE,
  '1.2.840.10008.1.2.4.50',
  '1.2.840.10008.1.2.2',
  '1.2.840.10008.1.2.1.99',
]

/** Elements that may come before (0020,000D), ascending, some of them sequences. */
function before(rng: Rng): Element[] {
  const out: Element[] = [
    uid(0x00080016, '1.2.840.10008.5.1.4.1.1.7'),
    uid(0x00080018, `2.25.${int(rng, 1, 1e6)}`),
  ]
  if (chance(rng, 0.5)) out.push(text(0x00080060, 'CS', pick(rng, ['OT', 'CT', 'MR'])))
  if (chance(rng, 0.5)) {
    const nested: Element[][] = []
    for (let i = int(rng, 0, 3); i > 0; i--)
      nested.push([uid(0x00081150, '1.2.3'), uid(0x00081155, `2.25.${i}`)])
    out.push({ tag: 0x00081115, vr: 'SQ', undefinedLength: chance(rng, 0.5), value: nested })
  }
  if (chance(rng, 0.5)) out.push(text(0x00100010, 'PN', pick(rng, ['A^B', `--${BOUNDARY}`, 'x\r\n\r\ny'])))
  if (chance(rng, 0.3))
    out.push({ tag: 0x00191001, vr: 'OB', value: Buffer.alloc(int(rng, 0, 3000), int(rng, 0, 255)) })
  return out
}

/** One part: usually ours, sometimes foreign, sometimes both (duplicates), sometimes broken. */
function part(rng: Rng): Buffer {
  const syntax = chance(rng, 0.9) ? pick(rng, SYNTAXES.slice(0, 3)) : pick(rng, SYNTAXES)
  const elements = before(rng)
  const study = chance(rng, 0.85) ? OURS : FOREIGN
  elements.push(uid(0x0020000d, study))
  // A second StudyInstanceUID after the first (or another tag out of order), as an attacker would.
  if (chance(rng, 0.05)) elements.push(uid(0x0020000d, study === OURS ? FOREIGN : OURS))
  if (chance(rng, 0.05)) elements.push(uid(0x00080018, '2.25.99'))
  elements.push(uid(0x0020000e, '1.2.840.99.1.1'))
  if (chance(rng, 0.05)) elements.push(uid(0x0020000d, FOREIGN))
  elements.push({ tag: 0x7fe00010, vr: 'OB', value: Buffer.alloc(int(rng, 0, 5000), 1) })
  let file = part10({
    syntax,
    elements,
    groupLength: chance(rng, 0.95) ? true : chance(rng, 0.5) ? false : 7,
  })
  if (chance(rng, 0.05)) file = file.subarray(0, int(rng, 0, file.length))
  if (chance(rng, 0.05)) {
    file = Buffer.from(file)
    for (let i = int(rng, 1, 4); i > 0; i--) file[int(rng, 0, file.length - 1)] = int(rng, 0, 255)
  }
  if (chance(rng, 0.03)) file = encode(elements, true) // no preamble at all
  return file
}

function body(rng: Rng): Buffer {
  const pieces: Buffer[] = []
  if (chance(rng, 0.05)) pieces.push(Buffer.from(pick(rng, ['\r\n', 'junk', `--${BOUNDARY}x\r\n`])))
  for (let n = int(rng, 1, 3); n > 0; n--) {
    const headers = chance(rng, 0.05)
      ? pick(rng, ['Content-Type: application/dicom\r\nContent-Length: 10', ''])
      : pick(rng, ['Content-Type: application/dicom', 'content-type:application/dicom'])
    pieces.push(Buffer.from(`--${BOUNDARY}\r\n${headers}\r\n\r\n`), part(rng), Buffer.from('\r\n'))
  }
  const epilogue = chance(rng, 0.9) ? pick(rng, ['\r\n', '', '\r\n\r\n']) : `\r\n--${BOUNDARY}\r\n`
  pieces.push(Buffer.from(`--${BOUNDARY}--${epilogue}`))
  return Buffer.concat(pieces)
}

/** The parts Orthanc's MultipartStreamReader would hand on from `bytes` (complete ones only). */
function orthancParts(bytes: Buffer): Buffer[] {
  const pattern = Buffer.from(`--${BOUNDARY}`)
  const parts: Buffer[] = []
  let at = bytes.indexOf(pattern)
  while (at !== -1 && at + pattern.length + 2 <= bytes.length) {
    const after = bytes.toString('latin1', at + pattern.length, at + pattern.length + 2)
    if (after !== '\r\n') break
    const start = at + pattern.length + 2
    const headersEnd = bytes.indexOf('\r\n\r\n', start)
    if (headersEnd === -1) break
    const headers = bytes.toString('latin1', start, headersEnd).toLowerCase()
    const length = /content-length\s*:\s*(\d+)/.exec(headers)
    let end: number
    if (length) {
      end = headersEnd + 4 + Number(length[1])
      if (end + 2 > bytes.length) break
    } else {
      const next = bytes.indexOf(pattern, headersEnd + 4)
      if (next === -1) break
      end = next - 2
    }
    parts.push(bytes.subarray(headersEnd + 4, Math.max(headersEnd + 4, end)))
    at = bytes.indexOf(pattern, end)
  }
  return parts
}

/**
 * Whether `part` carries the foreign UID anywhere but as the whole value of a top-level element
 * other than (0020,000D), as another Part 10 reader (dicom-parser) reads the part; a part it
 * cannot read counts if the UID's bytes are in it at all. The bytes alone are not enough: a byte
 * flip can turn the tag in front of them into another, e.g. private (0021,000D), where they scope
 * nothing (seed 1147823601 of the 10,000-run fuzz did). A second (0020,000D), which that reader
 * lets overwrite the first, leaves its value unexplained, so it still counts.
 */
function carriesForeignStudy(part: Buffer): boolean {
  if (!part.includes(FOREIGN)) return false
  let elements: Record<string, { dataOffset: number; length: number }>
  try {
    elements = dicomParser.parseDicom(new Uint8Array(part)).elements
  } catch {
    return true
  }
  const explained = new Set<number>()
  for (const [tag, element] of Object.entries(elements))
    if (tag !== 'x0020000d' && element.length >= FOREIGN.length) explained.add(element.dataOffset)
  for (let at = part.indexOf(FOREIGN); at !== -1; at = part.indexOf(FOREIGN, at + 1))
    if (!explained.has(at)) return true
  return false
}

t.test('a foreign UID in a private tag is not a foreign study', async (t) => {
  const elements = [
    uid(0x00080016, '1.2.840.10008.5.1.4.1.1.7'),
    uid(0x00080018, '2.25.1'),
    uid(0x0020000d, OURS),
    uid(0x0020000e, '1.2.840.99.1.1'),
    uid(0x0021000d, FOREIGN),
  ]
  const file = part10({ syntax: '1.2.840.10008.1.2.1', elements, groupLength: true })
  const input = Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ])
  const run = await runGuard(
    input,
    BOUNDARY,
    async (p) => {
      if (p.study !== OURS) throw new Conflict('foreign_study')
    },
    [7, 100],
  )
  t.equal(run.error, null, 'admitted')
  t.same(
    run.admitted.map((p) => p.study),
    [OURS],
    'read as ours',
  )
  const parts = orthancParts(run.out)
  t.equal(parts.length, 1, 'one part upstream')
  t.ok(parts[0]?.includes(FOREIGN), 'it carries the foreign bytes')
  t.notOk(carriesForeignStudy(parts[0] as Buffer), 'in a tag the other reader does not read as the study')
  const swapped = Buffer.from(parts[0] as Buffer)
  swapped.writeUInt16LE(0x0020, swapped.lastIndexOf(Buffer.from([0x21, 0x00, 0x0d, 0x00])))
  t.ok(carriesForeignStudy(swapped), 'made a second (0020,000D), it counts again')
})

t.test('no generated STOW body crashes the guard or gets a foreign study upstream', async (t) => {
  const count = runs('TG_FUZZ_RUNS', 300)
  let admittedParts = 0
  let refused = 0
  const reasons = new Map<string, number>()
  await forAll(count, async (rng) => {
    const input = body(rng)
    const chunks = [int(rng, 1, 64), int(rng, 1, 9000)]
    const run = await runGuard(
      input,
      BOUNDARY,
      async (p) => {
        if (p.study !== OURS) throw new Conflict('foreign_study')
      },
      chunks,
    )
    if (run.error !== null && !(run.error instanceof GateError)) throw run.error
    if (run.error) {
      refused++
      const reason = (run.error as GateError).reason
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    admittedParts += run.admitted.length
    if (!input.subarray(0, run.out.length).equals(run.out))
      throw new Error('the output is not the client bytes')
    for (const p of orthancParts(run.out)) {
      if (carriesForeignStudy(p)) throw new Error('a part carrying the foreign study reached the upstream')
    }
    // Every complete part in the output was admitted as ours.
    if (run.admitted.some((p) => p.study !== OURS)) throw new Error('a foreign study was admitted')
  })
  t.ok(admittedParts > count / 2, `many parts were admitted (${admittedParts})`)
  t.ok(refused > count / 5, `many bodies were refused (${refused}: ${JSON.stringify([...reasons])})`)
})
