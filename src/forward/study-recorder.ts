// Forward stage, STOW-RS in `scoping: studies` (DESIGN §2 and §4): which study a store writes to
// is decided from the DICOM data tokengate forwards, never from the upstream's answer or a URL it
// builds (a forged `Host` made those name any study). StowAdmission is asked, for each part as it
// streams (forward/stow-parts.ts), whether its study may be written: a study the token may see, or
// one the archive does not hold yet (a QIDO search), or one whose every archived instance was
// stored through this same set (a parallel or retried upload of a new study) — in both cases only
// if no other set claimed that new study first (a Redis key per study, so two sets racing to
// upload one new study cannot both get it). Anything else — a study of another album, a re-store
// of instances a foreign study holds — is refused before a byte of the part goes upstream.
//
// After the upstream answers, StoreAnswerRecorder reads its StoreInstances answer (PS3.18 §10.5.3,
// DICOM JSON, small: read whole before the client gets any of it) for the SOP Instance UIDs it
// says were stored, and only the admitted studies of those instances join the album (or inbox) —
// each only if every instance the archive has of it was stored through this set. The set changes
// (and this replica's cache forgets it) before the client can ask; a Redis failure is answered 503.
// Only 200 and 202 count: a failed store adds nothing.
import { Transform, type TransformCallback } from 'node:stream'
import { BadRequest, Conflict, UpstreamUnavailable } from '../errors.js'
import type { ResponsePlan } from '../rewrite/patch.js'
import type { StudySetRef } from '../token/study-sets.js'
import type { PartIdentity } from './stow-parts.js'
import { DicomJsonUrlRewriter } from './url-rewriter.js'

/** Study-set reads and writes a STOW needs (app.ts wires them to Redis and the cache). */
export interface StudyRecorder {
  /** Whether the set already holds the study. */
  has(into: StudySetRef, study: string): Promise<boolean>
  /** The instances of `study` remembered as stored through `into` (none: an empty set). */
  tracked(into: StudySetRef, study: string): Promise<ReadonlySet<string>>
  /** Claim a study new to the archive for `into`: false when another set claimed it first. */
  claim(into: StudySetRef, study: string): Promise<boolean>
  /** Remember that these instances of `study` were stored through `into`; all remembered so far. */
  track(into: StudySetRef, study: string, sops: readonly string[]): Promise<ReadonlySet<string>>
  /** Add studies to the set (this replica forgets its cached copy at once). */
  add(into: StudySetRef, uids: readonly string[]): Promise<void>
  /** Remove studies from the set (idem). */
  remove(from: StudySetRef, uids: readonly string[]): Promise<void>
}

/** The upstream's SOP Instance UIDs of a study (a QIDO-RS instance search). */
export type InstanceLister = (study: string) => Promise<string[]>

/** A StoreInstances answer larger than this is not read: the store is refused as unreadable. */
const MAX_STORE_RESPONSE = 32 * 1024 * 1024

const REFERENCED_SOP_SEQUENCE = '00081199'
const REFERENCED_SOP_INSTANCE_UID = '00081155'

type Attr = { Value?: unknown[] } | undefined
type Dataset = Record<string, Attr>

/**
 * The SOP Instance UIDs a StoreInstances answer lists as stored (Referenced SOP Sequence; failed
 * ones are in 0008,1198 and not read). Only UIDs are read: nothing in the answer names a study.
 */
export function storedSops(answer: unknown): Set<string> {
  const sops = new Set<string>()
  const data = answer as Dataset | null
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return sops
  for (const item of (data[REFERENCED_SOP_SEQUENCE]?.Value ?? []) as Dataset[]) {
    const sop = item?.[REFERENCED_SOP_INSTANCE_UID]?.Value?.[0]
    if (typeof sop === 'string') sops.add(sop)
  }
  return sops
}

/** The request side of one STOW-RS: which parts may go upstream, and what was sent. */
export class StowAdmission {
  /** Study → SOP Instance UIDs of the parts admitted (sent upstream). */
  readonly admitted = new Map<string, string[]>()
  /** One decision per study per request (a study's parts usually come together): visible or not. */
  private readonly decisions = new Map<string, Promise<boolean>>()

  constructor(
    private readonly into: StudySetRef,
    private readonly visible: { has(uid: string): boolean },
    private readonly recorder: StudyRecorder,
    private readonly listInstances: InstanceLister,
    private readonly tokenId: string,
  ) {}

  /** Resolves when the part may go upstream; rejects with Conflict / BadRequest when not. */
  readonly admit = async (part: PartIdentity): Promise<void> => {
    // The archive keys an instance by its SOP Instance UID: one it cannot name is not stored.
    if (part.sop === null) throw new BadRequest('bad_dicom', 'a STOW-RS part without SOP Instance UID')
    let decision = this.decisions.get(part.study)
    if (!decision) {
      decision = this.decide(part.study)
      this.decisions.set(part.study, decision)
    }
    // A study not visible yet is remembered as ours before the part goes upstream, so a parallel
    // or retried upload of the same new study is admitted. A visible one needs no such memory.
    if (!(await decision)) await this.recorder.track(this.into, part.study, [part.sop])
    const sops = this.admitted.get(part.study) ?? []
    sops.push(part.sop)
    this.admitted.set(part.study, sops)
  }

  /**
   * Resolves true for a visible study, false for one the archive has none of (or only ours) and
   * that this set claimed first: two sets racing to upload one new study cannot both get it.
   */
  private async decide(study: string): Promise<boolean> {
    if (this.visible.has(study)) return true
    const archived = await this.listInstances(study)
    if (archived.length > 0) {
      const ours = await this.recorder.tracked(this.into, study)
      // Not our own upload of it (in flight, or retried): a study of someone else.
      if (!archived.every((sop) => ours.has(sop))) throw new Conflict('foreign_study', this.tokenId)
    }
    if (!(await this.recorder.claim(this.into, study))) throw new Conflict('foreign_study', this.tokenId)
    return false
  }

  /** The admitted studies with the instances the answer says were stored (`all`: every one). */
  stored(answerSops: ReadonlySet<string> | 'all'): Map<string, string[]> {
    const out = new Map<string, string[]>()
    for (const [study, sops] of this.admitted) {
      const kept = answerSops === 'all' ? sops : sops.filter((sop) => answerSops.has(sop))
      if (kept.length) out.set(study, kept)
    }
    return out
  }
}

/**
 * The studies of a store to add to `into`: those it holds already need nothing; a new one is
 * added only when the upstream has no instance of it but those stored through `into`.
 */
export async function studiesToAdd(
  stored: Map<string, string[]>,
  into: StudySetRef,
  recorder: StudyRecorder,
  listInstances: InstanceLister,
): Promise<string[]> {
  const add: string[] = []
  for (const [study, sops] of stored) {
    if (await recorder.has(into, study)) continue
    if (sops.length === 0) continue // nothing to compare with: not added (fail closed)
    const ours = await recorder.track(into, study, sops)
    const upstream = await listInstances(study)
    if (upstream.length > 0 && upstream.every((sop) => ours.has(sop))) add.push(study)
  }
  return add
}

/** Holds the answer back, records its studies, then lets it through (URL-rewritten if planned). */
export class StoreAnswerRecorder extends Transform {
  private parts: Buffer[] = []
  private size = 0

  constructor(
    private readonly plan: NonNullable<ResponsePlan['record']>,
    private readonly admission: StowAdmission,
    private readonly status: number,
    private readonly recorder: StudyRecorder,
    private readonly listInstances: InstanceLister,
    private readonly urls: ResponsePlan['urls'],
  ) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length
    if (this.size > MAX_STORE_RESPONSE) {
      done(new UpstreamUnavailable('bad_response', 'STOW-RS answer too large to record'))
      return
    }
    this.parts.push(chunk)
    done()
  }

  override _flush(done: TransformCallback): void {
    const body = Buffer.concat(this.parts)
    this.parts = []
    let answer: ReadonlySet<string> | 'all' = new Set()
    try {
      answer = storedSops(JSON.parse(body.toString('utf8')))
    } catch {
      // Not JSON (an XML answer, or none): 200 says every instance was stored; 202 names none.
      if (this.status === 200) answer = 'all'
    }
    const stored = this.admission.stored(answer)
    studiesToAdd(stored, this.plan.into, this.recorder, this.listInstances)
      .then((studies) => (studies.length ? this.recorder.add(this.plan.into, studies) : undefined))
      .then(
        () => this.release(body, done),
        (err: unknown) => done(err as Error),
      )
  }

  private release(body: Buffer, done: TransformCallback): void {
    if (!this.urls) {
      this.push(body)
      done()
      return
    }
    const rewriter = new DicomJsonUrlRewriter(this.urls)
    rewriter.on('data', (chunk: Buffer) => this.push(chunk))
    rewriter.once('end', () => done())
    rewriter.once('error', done)
    rewriter.end(body)
  }
}
