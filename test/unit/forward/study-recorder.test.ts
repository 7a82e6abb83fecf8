// STOW-RS recording (forward/study-recorder.ts), no I/O: which parts may go upstream (admission),
// which instances a StoreInstances answer says were stored, and which studies join the set — a study the set holds already needs nothing,
// a new one joins only when the upstream has no instance of it but those stored through the set.
import t from 'tap'
import { BadRequest, Conflict } from '../../../src/errors.js'
import {
  StowAdmission,
  type StudyRecorder,
  storedSops,
  studiesToAdd,
} from '../../../src/forward/study-recorder.js'
import type { StudySetRef } from '../../../src/token/study-sets.js'

const item = (sop: string | null) => (sop ? { '00081155': { vr: 'UI', Value: [sop] } } : {})

t.test('the stored instances are the SOP UIDs of the Referenced SOP Sequence, nothing else', async (t) => {
  const answer = {
    '00081190': { vr: 'UR', Value: ['http://h/studies/6.6/x/dicom-web/studies/1.1'] },
    '00081198': { vr: 'SQ', Value: [item('9.9')] },
    '00081199': { vr: 'SQ', Value: [item('3.1'), item(null), item('3.3')] },
  }
  t.same([...storedSops(answer)], ['3.1', '3.3'])
  t.same([...storedSops('<xml/>')], [])
  t.same([...storedSops(null)], [])
})

const into: StudySetRef = { kind: 'album', album: 'A' }

function memoryRecorder(
  seen: Set<string>,
  tracked = new Map<string, Set<string>>(),
  claims = new Map<string, string>(),
): StudyRecorder {
  return {
    claim: async (into, study) => {
      const owner = JSON.stringify(into)
      if (!claims.has(study)) claims.set(study, owner)
      return claims.get(study) === owner
    },
    has: async (_into, study) => seen.has(study),
    tracked: async (_into, study) => tracked.get(study) ?? new Set(),
    track: async (_into, study, sops) => {
      const set = tracked.get(study) ?? new Set()
      for (const s of sops) set.add(s)
      tracked.set(study, set)
      return set
    },
    add: async () => {},
    remove: async () => {},
  }
}

t.test('a part goes upstream for a visible study, a new one, or one only we stored; else 409', async (t) => {
  const archive: Record<string, string[]> = { '1.1': ['a'], '2.2': ['b'], '3.3': ['mine'] }
  const tracked = new Map([['3.3', new Set(['mine'])]])
  const asked: string[] = []
  const admission = new StowAdmission(
    into,
    new Set(['1.1']),
    memoryRecorder(new Set(['1.1']), tracked),
    async (study) => {
      asked.push(study)
      return archive[study] ?? []
    },
    'tok',
  )
  await admission.admit({ study: '1.1', sop: 'a2' })
  await admission.admit({ study: '4.4', sop: 'n1' })
  await admission.admit({ study: '4.4', sop: 'n2' })
  await admission.admit({ study: '3.3', sop: 'more' })
  await t.rejects(
    admission.admit({ study: '2.2', sop: 'b' }),
    Conflict,
    'a foreign study, even re-storing its own SOP',
  )
  await t.rejects(admission.admit({ study: '5.5', sop: null }), BadRequest, 'no SOP Instance UID')
  t.same(asked, ['4.4', '3.3', '2.2'], 'the archive is asked once per study, never for a visible one')
  t.same(
    [...admission.admitted],
    [
      ['1.1', ['a2']],
      ['4.4', ['n1', 'n2']],
      ['3.3', ['more']],
    ],
  )
  t.same(
    [...admission.stored(new Set(['n2', 'more']))],
    [
      ['4.4', ['n2']],
      ['3.3', ['more']],
    ],
  )
  t.same([...admission.stored('all')].length, 3)
  t.notOk(tracked.get('2.2'), 'a refused part is not remembered as ours')
})

t.test('two sets racing to upload one new study: the first claim wins, the second is 409', async (t) => {
  const claims = new Map<string, string>()
  const empty = async () => []
  const admit = (album: string) =>
    new StowAdmission(
      { kind: 'album', album },
      new Set(),
      memoryRecorder(new Set(), new Map(), claims),
      empty,
      'tok',
    ).admit({ study: '6.6', sop: `${album}.1` })
  await admit('A')
  await t.rejects(admit('B'), Conflict, 'B came second')
  await admit('A') // A again (a parallel request of the same upload)
})

t.test('only studies whose every upstream instance was stored through the set are added', async (t) => {
  const tracked = new Map<string, Set<string>>([['2.2', new Set(['earlier'])]])
  const recorder = memoryRecorder(new Set(['1.0']), tracked)
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
