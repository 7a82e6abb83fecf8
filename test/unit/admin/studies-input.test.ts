// Study-set input checks (admin/studies.ts), no Redis: which UIDs are accepted, and how an import
// file is read (one UID a line, or a QIDO-RS DICOM JSON result) with messages that say where.
import t from 'tap'
import { checkStudyUids, parseStudyList, studySetRef } from '../../../src/admin/studies.js'
import { AdminInputError } from '../../../src/admin/tokens.js'

t.test('UIDs are digits and dots, at most 64 characters; duplicates are dropped', async (t) => {
  t.same(checkStudyUids(['1.2.3', '1.2.3', '2.25.1'], String), ['1.2.3', '2.25.1'])
  for (const bad of ['', '1..2', '.1', '1.', '1.2.a', '1,2', '1.2 3', `1.${'2'.repeat(63)}`]) {
    t.throws(() => checkStudyUids([bad], (i) => `arg ${i}`), AdminInputError, JSON.stringify(bad))
  }
  t.throws(() => checkStudyUids([], String), /no StudyInstanceUID given/)
})

t.test('only the first ten bad UIDs are shown', async (t) => {
  const bad = Array.from({ length: 50 }, (_, i) => `x${i}`)
  t.throws(() => checkStudyUids(bad, (i) => `line ${i + 1}`), /line 10: "x9", …$/)
})

t.test('a line file skips blank lines and # comments and names the line of a bad UID', async (t) => {
  t.same(parseStudyList('# header\n\n1.2\r\n 1.3 \n'), ['1.2', '1.3'])
  t.throws(() => parseStudyList('1.2\n\n# c\nnope\n'), /line 4: "nope"/)
})

t.test("a DICOM JSON file gives each item's 0020000D, and says which item lacks one", async (t) => {
  const qido = [
    { '0020000D': { vr: 'UI', Value: ['1.2.9'] } },
    { '0020000D': { vr: 'UI', Value: ['1.2.8'] } },
  ]
  t.same(parseStudyList(`  ${JSON.stringify(qido)}`), ['1.2.9', '1.2.8'])
  t.throws(() => parseStudyList('[{"00100010": {"vr": "PN"}}]'), /item 0 has no StudyInstanceUID/)
  t.throws(() => parseStudyList('[1, 2'), /not JSON/)
})

t.test('album and inbox names are checked like token names', async (t) => {
  t.same(studySetRef('album', 'A1'), { kind: 'album', album: 'A1' })
  t.same(studySetRef('inbox', 'bob'), { kind: 'inbox', user: 'bob' })
  t.throws(() => studySetRef('album', 'a b'), AdminInputError)
  t.throws(() => studySetRef('inbox', ''), AdminInputError)
})
