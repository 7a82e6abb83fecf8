// Forward stage, WADO-URI in `scoping: studies`: the `studyUID` passed the scope check, but the
// archive serves the instance `objectUID` names (Orthanc looks it up by SOP Instance UID alone
// when it reads no study). So the archive is asked first, by a QIDO-RS search under that study,
// whether the instance (and the series, if named) belongs to it; tokengate never relies on the
// archive to check. Yes-answers are cached in a small LRU (an instance never changes study), so a
// viewer paging through a series costs one search per instance, once.
import { LRUCache } from 'lru-cache'
import { UpstreamUnavailable } from '../errors.js'
import { arrayElements } from './json-array.js'
import type { SearchClient } from './search-client.js'

const SERIES_UID = '0020000E'
const SOP_UID = '00080018'

export interface WadoUidsToCheck {
  study: string
  series: string | null
  object: string | null
}

type Row = Record<string, { Value?: unknown[] } | undefined>

export class StudyMembership {
  private readonly known: LRUCache<string, true>

  constructor(
    private readonly searches: SearchClient,
    opts: { max?: number; ttlMs?: number } = {},
  ) {
    this.known = new LRUCache({ max: opts.max ?? 10_000, ttl: opts.ttlMs ?? 600_000 })
  }

  /**
   * Whether `object` (and `series`) belong to `study` in the archive under `qido` (the mount's
   * DICOMweb base), searched with the request's upstream headers. UIDs are digits and dots
   * (checked by rewrite/wado-query.ts): they go into the search path unescaped.
   */
  async belongs(qido: URL, headers: Record<string, string>, uids: WadoUidsToCheck): Promise<boolean> {
    if (uids.object === null && uids.series === null) return true
    const key = `${uids.study}/${uids.series ?? ''}/${uids.object ?? ''}`
    if (this.known.has(key)) return true
    const path =
      uids.object !== null
        ? `/studies/${uids.study}/instances?SOPInstanceUID=${uids.object}&includefield=${SERIES_UID}`
        : `/studies/${uids.study}/series?SeriesInstanceUID=${uids.series}`
    const answer = await this.searches.get(
      qido,
      path,
      { ...headers, accept: 'application/dicom+json' },
      AbortSignal.timeout(30_000),
    )
    if (answer.statusCode === 204 || answer.statusCode === 404) {
      answer.body.destroy()
      return false
    }
    if (answer.statusCode !== 200) {
      answer.body.destroy()
      throw new UpstreamUnavailable('bad_response', `membership search answered ${answer.statusCode}`)
    }
    let found = false
    try {
      for await (const raw of arrayElements(answer.body)) {
        const row = JSON.parse(raw.toString('utf8')) as Row
        const sop = row?.[SOP_UID]?.Value?.[0]
        const series = row?.[SERIES_UID]?.Value?.[0]
        // Each row is checked here too: an archive that ignores a filter must not make us say yes.
        if (uids.object !== null && sop !== uids.object) continue
        if (uids.series !== null && series !== uids.series) continue
        found = true
      }
    } catch (err) {
      // Not a DICOM JSON array: no answer either way (502, never a 500 or a yes).
      throw err instanceof UpstreamUnavailable
        ? err
        : new UpstreamUnavailable('bad_response', 'membership search')
    }
    if (found) this.known.set(key, true)
    return found
  }
}
