// The STOW-RS part header reader (forward/dicom-header.ts), no I/O: the StudyInstanceUID and SOP
// Instance UID of a Part 10 file from its first bytes, in explicit and implicit VR little endian,
// through sequences of defined and undefined length; "more" until the bytes suffice; refused for
// anything another parser could read differently.
import t from 'tap'
import { readDicomHeader } from '../../../src/forward/dicom-header.js'
import { EXPLICIT_LE, IMPLICIT_LE, instance, part10, text, uid } from '../../helpers/dicom.js'

const STUDY = '1.2.826.0.1.3680043.2.1'
const SOP = '2.25.1234567'

t.test('the study and instance are read in explicit and implicit VR little endian', async (t) => {
  for (const syntax of [EXPLICIT_LE, IMPLICIT_LE, '1.2.840.10008.1.2.4.50']) {
    const file = instance(STUDY, SOP, syntax)
    t.same(readDicomHeader(file, true), { kind: 'found', study: STUDY, sop: SOP }, syntax)
  }
})

t.test('a prefix is "more" until the tags up to the pixel data are in it, then found', async (t) => {
  const file = instance(STUDY, SOP)
  // The pixel data element's tag, VR and length: the reader stops there.
  const at = file.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00])) + 12
  for (let n = 0; n < at; n += 7)
    t.same(readDicomHeader(file.subarray(0, n), false), { kind: 'more' }, `${n}`)
  t.equal(readDicomHeader(file.subarray(0, at), false).kind, 'found')
  // Capped (all the caller will hold): the study stands once read.
  const afterStudy = file.indexOf(Buffer.from(STUDY)) + STUDY.length + 1
  t.equal(readDicomHeader(file.subarray(0, afterStudy), false, true).kind, 'found')
  t.equal(readDicomHeader(file.subarray(0, afterStudy - 2), false, true).kind, 'more', 'not before it')
  t.same(
    readDicomHeader(file.subarray(0, 100), true),
    { kind: 'refused', why: 'malformed' },
    'truncated part',
  )
})

t.test('sequences before the study are read through, defined or undefined length, nested', async (t) => {
  for (const undefinedLength of [false, true]) {
    for (const syntax of [EXPLICIT_LE, IMPLICIT_LE]) {
      const file = part10({
        syntax,
        elements: [
          uid(0x00080018, SOP),
          {
            tag: 0x00081115,
            vr: 'SQ',
            undefinedLength,
            value: [
              [
                uid(0x0020000d, '9.9.9'),
                { tag: 0x00081199, vr: 'SQ', undefinedLength, value: [[uid(0x00081155, '8.8')]] },
              ],
              [],
            ],
          },
          uid(0x0020000d, STUDY),
        ],
      })
      t.same(
        readDicomHeader(file, true),
        { kind: 'found', study: STUDY, sop: SOP },
        `${syntax} undefined=${undefinedLength}: the nested StudyInstanceUID is not the study`,
      )
    }
  }
})

t.test('what could be read differently elsewhere is refused', async (t) => {
  const cases: [string, Buffer, string][] = [
    ['no DICM', Buffer.concat([Buffer.alloc(132), instance(STUDY, SOP).subarray(132)]), 'not_part10'],
    ['big endian', instance(STUDY, SOP, '1.2.840.10008.1.2.2'), 'transfer_syntax'],
    ['deflated', instance(STUDY, SOP, '1.2.840.10008.1.2.1.99'), 'transfer_syntax'],
    ['a wrong group length', part10({ groupLength: 10, elements: [uid(0x0020000d, STUDY)] }), 'not_part10'],
    ['no study', part10({ elements: [uid(0x00080018, SOP), uid(0x0020000e, '1.2')] }), 'no_study'],
    ['no study, part ends', part10({ elements: [uid(0x00080018, SOP)] }), 'no_study'],
    [
      'tags out of order',
      part10({ elements: [uid(0x00100010, '1'), uid(0x00080018, SOP), uid(0x0020000d, STUDY)] }),
      'malformed',
    ],
    ['twice the study', part10({ elements: [uid(0x0020000d, '7.7'), uid(0x0020000d, STUDY)] }), 'malformed'],
    [
      'a second study later, out of order',
      part10({ elements: [uid(0x0020000d, STUDY), uid(0x0020000e, '1.2'), uid(0x0020000d, '7.7')] }),
      'malformed',
    ],
    ['a study that is no UID', part10({ elements: [uid(0x0020000d, `${STUDY}x`)] }), 'malformed'],
    ['a study UID with a leading space', part10({ elements: [uid(0x0020000d, ` ${STUDY}`)] }), 'malformed'],
    ['a study in another VR', part10({ elements: [text(0x0020000d, 'LO', STUDY)] }), 'malformed'],
    [
      'an unknown VR',
      part10({ elements: [text(0x00100010, 'ZZ', 'x'), uid(0x0020000d, STUDY)] }),
      'malformed',
    ],
  ]
  for (const [name, file, why] of cases) t.same(readDicomHeader(file, true), { kind: 'refused', why }, name)
  // The trailing NUL of an odd-length UID is padding, not part of it.
  t.equal(
    (readDicomHeader(part10({ elements: [uid(0x0020000d, '1.23')] }), true) as { study: string }).study,
    '1.23',
  )
})
