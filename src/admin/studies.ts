// Study-set administration (scoping: studies, DESIGN §3–4): add, remove, list and bulk-import the
// StudyInstanceUIDs of an album or of a user's inbox. The CLI (admin/study-commands.ts) and the
// admin HTTP API share these operations; they check every input, and the writes go through
// token/study-sets.ts, which publishes the invalidation every replica's cache listens to.
// Kept apart from admin/tokens.ts: token records and study sets change for different reasons.
import type { Cluster, Redis } from 'ioredis'
import type { Keys } from '../token/keys.js'
import { isStudyUid, MAX_UID_LENGTH, type StudySetRef, StudySets } from '../token/study-sets.js'
import { type Actor, type AuditOptions, AuditTrail, osUser } from './audit.js'
import { pageStudies, type SetPageInput } from './set-page.js'
import type { TokenPage } from './token-listing.js'
import { AdminInputError, checkName } from './tokens.js'

export type { StudySetRef }

/** What add, remove and import report. */
export interface StudySetChange {
  /** `album:<id>` or `inbox:<user>`. */
  set: string
  /** UIDs given (after dropping duplicates). */
  given: number
  /** UIDs that were added (or removed): the others were already there (or absent). */
  changed: number
  /** UIDs in the set afterwards. */
  size: number
}

/** At most this many UIDs are shown when refusing input, so a bad 10,000-line file prints 10. */
const SHOWN = 10

/** The set an album or inbox command is about, with its name checked. */
export function studySetRef(kind: 'album' | 'inbox', name: string): StudySetRef {
  return kind === 'album'
    ? { kind, album: checkName(name, 'the album', 'album') }
    : { kind, user: checkName(name, 'the user', 'user') }
}

export function studySetLabel(ref: StudySetRef): string {
  return ref.kind === 'album' ? `album:${ref.album}` : `inbox:${ref.user}`
}

/**
 * Distinct UIDs, each checked (digits and dots, at most 64 characters). `where(i)` names the
 * i-th input in a message (`argument 3`, `line 12`). Throws AdminInputError listing the bad ones.
 */
export function checkStudyUids(uids: readonly string[], where: (i: number) => string): string[] {
  const bad: string[] = []
  const out = new Set<string>()
  uids.forEach((uid, i) => {
    if (isStudyUid(uid)) out.add(uid)
    else if (bad.length < SHOWN) bad.push(`${where(i)}: "${uid.slice(0, 80)}"`)
    else if (bad.length === SHOWN) bad.push('…')
  })
  if (bad.length) {
    throw new AdminInputError(
      `not a StudyInstanceUID (digits and dots, at most ${MAX_UID_LENGTH} characters): ${bad.join(', ')}`,
      'uids',
    )
  }
  if (out.size === 0) throw new AdminInputError('no StudyInstanceUID given', 'uids')
  return [...out]
}

const STUDY_INSTANCE_UID = '0020000D'

/**
 * The UIDs in an import file: DICOM JSON (a QIDO-RS study search result, PS3.18 Annex F: an array
 * of objects with `0020000D`) when it starts with `[`, else one UID a line (blank lines and
 * `#` comments skipped). Every UID is checked; the message names the line or array index.
 */
export function parseStudyList(text: string): string[] {
  const trimmed = text.trimStart()
  if (trimmed.startsWith('[')) {
    let results: unknown
    try {
      results = JSON.parse(trimmed)
    } catch (err) {
      throw new AdminInputError(`the file starts with "[" but is not JSON: ${(err as Error).message}`, 'file')
    }
    if (!Array.isArray(results))
      throw new AdminInputError('expected a JSON array of DICOM JSON objects', 'file')
    const uids = results.map((item, i) => {
      const value = (item as Record<string, { Value?: unknown[] }> | null)?.[STUDY_INSTANCE_UID]?.Value?.[0]
      if (typeof value !== 'string') {
        throw new AdminInputError(`item ${i} has no StudyInstanceUID (${STUDY_INSTANCE_UID}) value`, 'file')
      }
      return value
    })
    return checkStudyUids(uids, (i) => `item ${i}`)
  }
  const uids: string[] = []
  const lineOf: number[] = []
  text.split(/\r?\n/).forEach((line, i) => {
    const uid = line.trim()
    if (uid === '' || uid.startsWith('#')) return
    uids.push(uid)
    lineOf.push(i + 1)
  })
  return checkStudyUids(uids, (i) => `line ${lineOf[i]}`)
}

/**
 * The study-set operations over one Redis connection (the CLI's, or the admin API's). Every change
 * is recorded in the audit trail (admin/audit.ts) after it is made, with how many UIDs changed.
 */
export class StudyAdmin {
  private readonly sets: StudySets
  private readonly audit: AuditTrail
  private readonly actor: Actor

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: Keys,
    opts: { actor?: Actor; audit?: AuditOptions } = {},
  ) {
    this.sets = new StudySets(redis, keys)
    this.audit = new AuditTrail(redis, keys, opts.audit)
    this.actor = opts.actor ?? { name: osUser() }
  }

  /** Add UIDs to the set (checked first: nothing is written if one is malformed). */
  async add(ref: StudySetRef, uids: readonly string[]): Promise<StudySetChange> {
    const valid = checkStudyUids(uids, (i) => `UID ${i + 1}`)
    return this.changed(ref, 'add', valid.length, await this.sets.add(ref, valid))
  }

  /** Bulk import: the UIDs of parseStudyList(text). */
  async import(ref: StudySetRef, text: string): Promise<StudySetChange> {
    const valid = parseStudyList(text)
    return this.changed(ref, 'add', valid.length, await this.sets.add(ref, valid))
  }

  /** Remove UIDs: every replica stops serving them on its next request. */
  async remove(ref: StudySetRef, uids: readonly string[]): Promise<StudySetChange> {
    const valid = checkStudyUids(uids, (i) => `UID ${i + 1}`)
    return this.changed(ref, 'remove', valid.length, await this.sets.remove(ref, valid))
  }

  private async changed(
    ref: StudySetRef,
    what: 'add' | 'remove',
    given: number,
    changed: number,
  ): Promise<StudySetChange> {
    await this.audit.record(this.actor, {
      op: `${ref.kind}.${what}-studies`,
      ...(ref.kind === 'album' ? { album: ref.album } : { user: ref.user }),
      count: changed,
      changed: changed > 0,
    })
    return this.report(ref, given, changed)
  }

  /** A page of the set's UIDs, sorted (`album studies`, `GET /albums/{album}/studies`). */
  async page(ref: StudySetRef, input: SetPageInput = {}): Promise<TokenPage<string>> {
    return pageStudies(this.redis, this.keys, ref, input)
  }

  private async report(ref: StudySetRef, given: number, changed: number): Promise<StudySetChange> {
    return { set: studySetLabel(ref), given, changed, size: await this.sets.count(ref) }
  }
}
