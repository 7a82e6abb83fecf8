// Rewrite stage, `scoping: studies` (DESIGN §4), the pure part: read what a request says about
// studies — the study in a DICOMweb path, the client's StudyInstanceUID filter in every spelling
// an upstream might honour, `limit`/`offset` — and write the narrowed QIDO
// query, split over several upstream searches when one URL would be too long. No I/O: the
// decisions over study sets are in rewrite/study-scope.ts.
import { BadRequest } from '../errors.js'
import { percentDecode } from './canonical-query.js'
import { formDecode, scopeParamName } from './query-scope.js'

/** Where a request lands in the DICOMweb resource tree (PS3.18 §10.4, §10.6), for studies mode. */
export type StudyRoute =
  /** A QIDO-RS search: /studies, /series, /instances, or one under /studies/{study}[/series/{s}]. */
  | { kind: 'search'; study: string | null }
  /** Anything else under /studies/{study}: metadata, series, instances, frames, rendered, bulkdata… */
  | { kind: 'study'; study: string }
  /** STOW-RS: POST /studies or /studies/{study}. */
  | { kind: 'store'; study: string | null }
  /** WADO-URI (the study is in the `studyUID` query parameter: rewrite/wado-query.ts). */
  | { kind: 'wado' }
  /** Not addressable by study (/series/{uid}/…, /instances/{uid}/…, anything else): out of scope. */
  | { kind: 'other' }

const badPath = () => new BadRequest('bad_path')

/** A path segment as the upstream will read it (percent-decoded; `+` is no space in a path). */
function decodeSegment(raw: string): string {
  return percentDecode(raw, badPath)
}

/** Classify a request by method and path below the mount (raw, as route/match.ts keeps it). */
export function classifyStudyRoute(method: string, subPath: string, wado: boolean): StudyRoute {
  if (wado) return { kind: 'wado' }
  const segs = subPath.split('/').slice(1)
  if (segs.length > 1 && segs.at(-1) === '') segs.pop() // a trailing slash
  const read = method === 'GET' || method === 'HEAD'
  const [top, study, level, series, leaf] = segs
  if (top !== 'studies') {
    if (read && segs.length === 1 && (top === 'series' || top === 'instances'))
      return { kind: 'search', study: null }
    return { kind: 'other' }
  }
  if (study === undefined) {
    if (read) return { kind: 'search', study: null }
    return method === 'POST' ? { kind: 'store', study: null } : { kind: 'other' }
  }
  const uid = decodeSegment(study)
  if (method === 'POST' && segs.length === 2) return { kind: 'store', study: uid }
  if (read) {
    const search =
      (segs.length === 3 && (level === 'series' || level === 'instances')) ||
      (segs.length === 5 && level === 'series' && series !== undefined && leaf === 'instances')
    if (search) return { kind: 'search', study: uid }
  }
  return { kind: 'study', study: uid }
}

/** One `name=value` pair of a raw query, split once. */
interface Pair {
  raw: string
  name: string
}

function pairs(query: string): Pair[] {
  if (query === '') return []
  return query.split('&').map((raw) => {
    const eq = raw.indexOf('=')
    return { raw, name: eq === -1 ? raw : raw.slice(0, eq) }
  })
}

function pairValue(raw: string): string {
  const eq = raw.indexOf('=')
  const value = formDecode(eq === -1 ? '' : raw.slice(eq + 1))
  if (value === null) throw new BadRequest('bad_query')
  return value
}

function foldedName(rawName: string): string {
  const name = formDecode(rawName)
  if (name === null) throw new BadRequest('bad_query')
  return name.trim().toLowerCase()
}

/** StudyInstanceUID by keyword or by tag (PS3.18 §8.3.4.1: `{attributeID}` is either). */
const STUDY_UID_NAMES = new Set(['studyinstanceuid', '0020000d'])

/** What a QIDO query says, read for narrowing. */
export interface SearchQuery {
  /**
   * The client's StudyInstanceUID filter: the union of every spelling's values (repeated
   * parameters, `,` or `\` lists, percent-encoded, any case of the name, the tag 0020000D);
   * null when it gave none (or only universal ones: empty or `*`).
   */
  studies: string[] | null
  /** `limit` / `offset` as the client gave them (null when absent). */
  limit: number | null
  offset: number | null
  /** Every other raw pair, byte for byte and in order (album/inbox removed too). */
  kept: string[]
}

function count(raw: string): number {
  const value = pairValue(raw).trim()
  if (!/^\d{1,9}$/.test(value)) throw new BadRequest('bad_query')
  return Number(value)
}

/** Read a QIDO query. Throws BadRequest('bad_query') for an undecodable name or value. */
export function readSearchQuery(query: string): SearchQuery {
  const studies = new Set<string>()
  let limit: number | null = null
  let offset: number | null = null
  const kept: string[] = []
  for (const pair of pairs(query)) {
    const name = foldedName(pair.name)
    if (STUDY_UID_NAMES.has(name)) {
      for (const part of pairValue(pair.raw).split(/[,\\]/)) {
        const uid = part.trim()
        if (uid !== '' && uid !== '*') studies.add(uid)
      }
    } else if (name === 'limit') {
      limit = count(pair.raw)
    } else if (name === 'offset') {
      offset = count(pair.raw)
    } else if (scopeParamName(pair.name) === null) {
      kept.push(pair.raw)
    }
  }
  return { studies: studies.size ? [...studies] : null, limit, offset, kept }
}

/** The query with StudyInstanceUID set to `uids` (a UID-list match, PS3.18 §8.3.4.1). */
export function narrowedQuery(
  kept: readonly string[],
  uids: readonly string[],
  extra: readonly string[] = [],
): string {
  // UIDs are digits and dots (checked when they enter a study set): no escaping needed.
  return [...kept, ...extra, `StudyInstanceUID=${uids.join(',')}`].join('&')
}

/**
 * Split `uids` into lists whose comma-joined length stays within `budget` characters (at least
 * one UID a list, however long), in order.
 */
export function splitUids(uids: readonly string[], budget: number): string[][] {
  const lists: string[][] = []
  let current: string[] = []
  let length = 0
  for (const uid of uids) {
    const add = current.length === 0 ? uid.length : uid.length + 1
    if (current.length > 0 && length + add > budget) {
      lists.push(current)
      current = []
      length = 0
    }
    length += current.length === 0 ? uid.length : uid.length + 1
    current.push(uid)
  }
  if (current.length) lists.push(current)
  return lists
}
