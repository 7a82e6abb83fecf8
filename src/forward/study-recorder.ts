// Forward stage, STOW-RS in `scoping: studies` (DESIGN §4): a store through an album token adds
// every study it stored to the album; through a user token, to the album it named or the inbox.
// The upstream's StoreInstances answer (PS3.18 §10.5.3, DICOM JSON) is read whole — it is small:
// a few hundred bytes per instance — before the client gets any of it, so the studies are in the
// set (and this replica's cache forgets the old set) before the client can ask for them, and a
// Redis failure is answered 503 rather than a success whose study stays invisible. Only 200 and
// 202 (some stored) count: a failed store adds nothing.
//
// A store must not become a way in: storing one crafted instance under the StudyInstanceUID of a
// study in someone else's album would otherwise add that whole study to the storer's album. So a
// study the set does not hold yet is added only when every instance the upstream has of it was
// stored through this same set (tracked across requests for an hour, so parallel uploads of one
// new study work); a study that also holds instances from elsewhere is not added.
import { Transform, type TransformCallback } from 'node:stream'
import { UpstreamUnavailable } from '../errors.js'
import type { ResponsePlan } from '../rewrite/patch.js'
import { isStudyUid, type StudySetRef } from '../token/study-sets.js'
import { DicomJsonUrlRewriter } from './url-rewriter.js'

/** Study-set reads and writes a STOW needs (app.ts wires them to Redis and the cache). */
export interface StudyRecorder {
  /** Whether the set already holds the study. */
  has(into: StudySetRef, study: string): Promise<boolean>
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

const RETRIEVE_URL = '00081190'
const REFERENCED_SOP_SEQUENCE = '00081199'
const REFERENCED_SOP_INSTANCE_UID = '00081155'

type Attr = { Value?: unknown[] } | undefined
type Dataset = Record<string, Attr>

function uidIn(text: string | undefined): string | null {
  if (text === undefined) return null
  try {
    const uid = decodeURIComponent(text)
    return isStudyUid(uid) ? uid : null
  } catch {
    return null
  }
}

/** The study and instance of a RetrieveURL (`…/studies/{s}[/series/{x}/instances/{i}]`). */
function parseRetrieveUrl(url: unknown): { study: string | null; sop: string | null } {
  if (typeof url !== 'string') return { study: null, sop: null }
  const m = /\/studies\/([^/?#]+)(?:\/series\/[^/?#]+\/instances\/([^/?#]+))?/.exec(url)
  return { study: uidIn(m?.[1]), sop: uidIn(m?.[2]) }
}

/**
 * What a StoreInstances answer says was stored: study → its stored SOP Instance UIDs, from each
 * Referenced SOP Sequence item (failed instances are in 0008,1198 and not read). An item's study
 * is in its RetrieveURL, else the answer's own RetrieveURL, else the path's study.
 */
export function storedInstances(answer: unknown, pathStudy: string | null): Map<string, string[]> {
  const stored = new Map<string, string[]>()
  const data = answer as Dataset | null
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return stored
  const fallback = parseRetrieveUrl(data[RETRIEVE_URL]?.Value?.[0]).study ?? pathStudy
  for (const item of (data[REFERENCED_SOP_SEQUENCE]?.Value ?? []) as Dataset[]) {
    const url = parseRetrieveUrl(item?.[RETRIEVE_URL]?.Value?.[0])
    const study = url.study ?? fallback
    const sop = uidIn(item?.[REFERENCED_SOP_INSTANCE_UID]?.Value?.[0] as string | undefined) ?? url.sop
    if (!study) continue
    const sops = stored.get(study) ?? []
    if (sop) sops.push(sop)
    stored.set(study, sops)
  }
  return stored
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
    let answer: unknown = null
    try {
      answer = JSON.parse(body.toString('utf8'))
    } catch {
      // Not JSON (an XML answer, or none): no study can be read from it; nothing is added.
    }
    const stored = storedInstances(answer, this.plan.pathStudy)
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
