// Forward stage, STOW-RS in `scoping: studies` (DESIGN §4): a store through an album token adds
// every study it stored to the album; through a user token, to the album it named or the inbox.
// The upstream's StoreInstances answer (PS3.18 §10.5.3, DICOM JSON) is read whole — it is small:
// a few hundred bytes per instance — before the client gets any of it, so the studies are in the
// set (and this replica's cache forgets the old set) before the client can ask for them, and a
// Redis failure is answered 503 rather than a success whose study stays invisible. Only 200 and
// 202 (some stored) count: a failed store adds nothing.
import { Transform, type TransformCallback } from 'node:stream'
import { UpstreamUnavailable } from '../errors.js'
import type { ResponsePlan } from '../rewrite/patch.js'
import { isStudyUid, type StudySetRef } from '../token/study-sets.js'
import { DicomJsonUrlRewriter } from './url-rewriter.js'

/** Adds studies to a set (and makes this replica forget its cached copy at once). */
export interface StudyRecorder {
  add(into: StudySetRef, uids: readonly string[]): Promise<void>
}

/** A StoreInstances answer larger than this is not read: the store is refused as unreadable. */
const MAX_STORE_RESPONSE = 32 * 1024 * 1024

const RETRIEVE_URL = '00081190'
const REFERENCED_SOP_SEQUENCE = '00081199'

type Attr = { Value?: unknown[] } | undefined
type Dataset = Record<string, Attr>

/** The study of a RetrieveURL (`…/studies/{uid}[/…]`), or null. */
function studyOfUrl(url: unknown): string | null {
  if (typeof url !== 'string') return null
  const m = /\/studies\/([^/?#]+)/.exec(url)
  if (!m) return null
  try {
    const uid = decodeURIComponent(m[1] as string)
    return isStudyUid(uid) ? uid : null
  } catch {
    return null
  }
}

/**
 * The studies a StoreInstances answer says were stored: the RetrieveURL of each Referenced SOP
 * Sequence item (the stored instances; failed ones are in 0008,1198 and carry none), else the
 * answer's own RetrieveURL, else the study of the path when some instance was stored.
 */
export function storedStudies(answer: unknown, pathStudy: string | null): string[] {
  const data = answer as Dataset | null
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return []
  const items = (data[REFERENCED_SOP_SEQUENCE]?.Value ?? []) as Dataset[]
  const studies = new Set<string>()
  for (const item of items) {
    const uid = studyOfUrl(item?.[RETRIEVE_URL]?.Value?.[0])
    if (uid) studies.add(uid)
  }
  if (studies.size === 0 && items.length > 0) {
    const uid = studyOfUrl(data[RETRIEVE_URL]?.Value?.[0]) ?? pathStudy
    if (uid) studies.add(uid)
  }
  return [...studies]
}

/** Holds the answer back, records its studies, then lets it through (URL-rewritten if planned). */
export class StoreAnswerRecorder extends Transform {
  private parts: Buffer[] = []
  private size = 0

  constructor(
    private readonly plan: NonNullable<ResponsePlan['record']>,
    private readonly recorder: StudyRecorder,
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
    const studies = storedStudies(answer, this.plan.pathStudy)
    const recorded = studies.length ? this.recorder.add(this.plan.into, studies) : Promise.resolve()
    recorded.then(
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
