// STOW-RS recording (forward/study-recorder.ts), no I/O: which studies a StoreInstances answer
// says were stored, and which of them join the set — a study the set holds already needs nothing,
// a new one joins only when the upstream has no instance of it but those stored through the set.
import t from 'tap'
import { type StudyRecorder, storedInstances, studiesToAdd } from '../../../src/forward/study-recorder.js'
import type { StudySetRef } from '../../../src/token/study-sets.js'

const item = (url: string | null, sop: string | null) => ({
  ...(sop ? { '00081155': { vr: 'UI', Value: [sop] } } : {}),
  ...(url ? { '00081190': { vr: 'UR', Value: [url] } } : {}),
})

t.test('stored instances come from the Referenced SOP Sequence, grouped by study', async (t) => {
  const answer = {
    '00081190': { vr: 'UR', Value: ['http://pacs/dicom-web/studies/1.1'] },
    '00081198': { vr: 'SQ', Value: [item(null, '9.9')] },
    '00081199': {
      vr: 'SQ',
      Value: [
        item('http://pacs/dicom-web/studies/1.1/series/2/instances/3.1', '3.1'),
        item('http://pacs/dicom-web/studies/1.1/series/2/instances/3.2', null),
        item('http://"gate:80"/dicom-web/studies/1.2/series/2/instances/3.3', '3.3'),
        item(null, '3.4'),
      ],
    },
  }
  t.same(
    [...storedInstances(answer, null)],
    [
      ['1.1', ['3.1', '3.2', '3.4']],
      ['1.2', ['3.3']],
    ],
  )
  t.same(
    [...storedInstances({ '00081199': { Value: [item(null, '3.5')] } }, '7.7')],
    [['7.7', ['3.5']]],
    'the path study',
  )
  t.same([...storedInstances({ '00081198': { Value: [item(null, '9.9')] } }, '7.7')], [], 'all failed: none')
  t.same([...storedInstances('<xml/>', '7.7')], [])
  t.same(
    [
      ...storedInstances(
        { '00081199': { Value: [item('http://x/studies/1.a/series/2/instances/3', '3')] } },
        null,
      ),
    ],
    [],
    'not a UID',
  )
})

t.test('only studies whose every upstream instance was stored through the set are added', async (t) => {
  const into: StudySetRef = { kind: 'album', album: 'A' }
  const tracked = new Map<string, Set<string>>([['2.2', new Set(['earlier'])]])
  const recorder: StudyRecorder = {
    has: async (_into, study) => study === '1.0',
    track: async (_into, study, sops) => {
      const set = tracked.get(study) ?? new Set()
      for (const s of sops) set.add(s)
      tracked.set(study, set)
      return set
    },
    add: async () => {},
    remove: async () => {},
  }
  const upstream: Record<string, string[]> = {
    '1.0': ['x'],
    '2.1': ['a', 'b'],
    '2.2': ['c', 'earlier'],
    '2.3': ['d', 'someone-else'],
    '2.4': [],
  }
  const stored = new Map([
    ['1.0', ['x']],
    ['2.1', ['a', 'b']],
    ['2.2', ['c']],
    ['2.3', ['d']],
    ['2.4', ['e']],
    ['2.5', []],
  ])
  const listed: string[] = []
  const add = await studiesToAdd(stored, into, recorder, async (study) => {
    listed.push(study)
    return upstream[study] ?? []
  })
  t.same(add, ['2.1', '2.2'], 'new, and every instance ours (2.2 with one from an earlier request)')
  t.notOk(listed.includes('1.0'), 'a study the set holds is not looked up')
})
