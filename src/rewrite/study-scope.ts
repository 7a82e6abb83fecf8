// Rewrite stage, `scoping: studies` (DESIGN §4): the legacy PACS knows nothing of albums, so
// tokengate enforces them. Study-level paths and WADO-URI `studyUID` must be among the studies the
// token may see (else 404, never 403: no hint that a study exists); QIDO searches are narrowed to
// a StudyInstanceUID list intersected with the client's own, answered `[]` without the upstream
// when nothing is left, and split over several upstream searches when one URL would be too long;
// a STOW-RS is planned as a guarded store (which study each part goes to is read from the DICOM
// data as it streams, never from the upstream's answer: forward/stow.ts); a WADO-URI objectUID and
// seriesUID are checked to belong to the visible studyUID (forward/wado-verify.ts); an upstream
// 404 is answered with tokengate's own body. Returns a Plan; the executor (forward/) carries it out.
import { Forbidden, OutOfScope } from '../errors.js'
import type { Decision } from '../policy/decide.js'
import { storeTarget, visibleStudies } from '../policy/visible-studies.js'
import type { RouteMatch } from '../route/match.js'
import type { TokenStore } from '../token/store.js'
import type { UpstreamPatch } from './patch.js'
import type { Plan } from './plan.js'
import { classifyStudyRoute, narrowedQuery, readSearchQuery, splitUids } from './study-query.js'
import { readWadoUids } from './wado-query.js'

export interface StudyScopeConfig {
  /** Longest upstream request target (path + query) one narrowed search may have. */
  maxUrlLength: number
}

type SetReader = Pick<TokenStore, 'albumStudies' | 'inboxStudies' | 'userAlbums'>

/** `/studies/{uid}` itself: sets hold whole studies, so only it can be added or removed. */
const STUDY_LEVEL = /^\/studies\/[^/]+\/?$/

/**
 * An upstream 404 says whether a UID exists anywhere in the archive: in studies mode it is
 * answered with tokengate's own not_found body, the same as a study outside the scope.
 */
function uniformNotFound(patch: UpstreamPatch): UpstreamPatch {
  return { ...patch, response: { ...patch.response, uniformNotFound: true } }
}

function outOfScope(decision: Decision): OutOfScope {
  return new OutOfScope('study_not_in_scope', decision.tokenId)
}

export async function planStudyScope(
  method: string,
  route: RouteMatch,
  decision: Decision,
  patch: UpstreamPatch,
  store: SetReader,
  cfg: StudyScopeConfig,
): Promise<Plan> {
  const at = classifyStudyRoute(method, route.subPath, route.wado)
  switch (at.kind) {
    case 'other':
      throw outOfScope(decision)
    case 'store':
      // Each part's study is read from its DICOM header as it streams, and checked against this
      // scope (or the archive, for a new study) before it goes upstream; what the upstream then
      // says it stored joins the token's album (or the user's inbox).
      return {
        kind: 'store',
        patch: uniformNotFound(patch),
        into: storeTarget(decision.scope),
        visible: await visibleStudies(decision.scope, store),
        tokenId: decision.tokenId,
      }
    case 'wado': {
      // The exact, case-sensitive names only (PS3.18 §9.2); near-spellings were refused (400).
      const uids = readWadoUids(route.params)
      const visible = await visibleStudies(decision.scope, store)
      if (uids.study === null || !visible.has(uids.study)) throw outOfScope(decision)
      // The series and instance must belong to that study: checked against the archive (cached).
      return {
        kind: 'wado',
        patch: uniformNotFound(patch),
        qido: route.mount.upstream,
        study: uids.study,
        series: uids.series,
        object: uids.object,
        tokenId: decision.tokenId,
      }
    }
    case 'study': {
      if (method === 'DELETE' || method === 'PUT') {
        // Sets hold studies: a series or an instance is never taken out of or added to one.
        if (!STUDY_LEVEL.test(route.subPath)) throw new Forbidden('study_level_only', decision.tokenId)
        return method === 'DELETE'
          ? planUnlink(decision, patch, at.study, store)
          : planAdopt(decision, patch, at.study, store)
      }
      const visible = await visibleStudies(decision.scope, store)
      if (!visible.has(at.study)) throw outOfScope(decision)
      return { kind: 'forward', patch: uniformNotFound(patch) }
    }
    case 'search':
      return planSearch(route, decision, patch, at.study, store, cfg)
  }
}

/**
 * DELETE in `scoping: studies` never reaches the shared archive: a study-level DELETE removes the
 * study from the set it was asked of (the album; a user token's inbox unless `?album=` names one
 * — KHEOPS's semantics). Series and instances were refused before (study_level_only).
 */
async function planUnlink(
  decision: Decision,
  patch: UpstreamPatch,
  study: string,
  store: SetReader,
): Promise<Plan> {
  const from = storeTarget(decision.scope)
  const set =
    from.kind === 'album' ? await store.albumStudies(from.album) : await store.inboxStudies(from.user)
  if (!set.has(study)) throw outOfScope(decision)
  return { kind: 'unlink', patch, from, study }
}

/**
 * PUT in `scoping: studies` ("appropriate", KHEOPS's semantics) adds a study the caller can see to
 * a set, never touching the archive: a user token's study (in any of its albums or its inbox) goes
 * to the album `?album=` names (membership checked by decide) or else to its inbox; an album
 * token's study (with `appropriate`) goes to its owner's inbox — none without an owner.
 */
async function planAdopt(
  decision: Decision,
  patch: UpstreamPatch,
  study: string,
  store: SetReader,
): Promise<Plan> {
  const scope = decision.scope
  if (scope.kind === 'api') throw outOfScope(decision)
  if (scope.kind === 'album') {
    if (!decision.user) throw new Forbidden('inbox_refused', decision.tokenId)
    if (!(await store.albumStudies(scope.album)).has(study)) throw outOfScope(decision)
    return { kind: 'adopt', patch, into: { kind: 'inbox', user: decision.user }, study }
  }
  // A user token takes a study from anywhere it can see, into the album it names or its inbox.
  const visible = await visibleStudies({ kind: 'user', user: scope.user }, store)
  if (!visible.has(study)) throw outOfScope(decision)
  return { kind: 'adopt', patch, into: storeTarget(scope), study }
}

async function planSearch(
  route: RouteMatch,
  decision: Decision,
  patch: UpstreamPatch,
  study: string | null,
  store: SetReader,
  cfg: StudyScopeConfig,
): Promise<Plan> {
  const query = readSearchQuery(route.query)
  const visible = await visibleStudies(decision.scope, store)
  if (study !== null && !visible.has(study)) throw outOfScope(decision)
  // Under /studies/{uid} the path pins the study; the list says so too, for upstreams that OR them.
  const allowed = study !== null ? [study] : null
  const uids = query.studies
    ? query.studies.filter((uid) => (allowed ? allowed.includes(uid) : visible.has(uid)))
    : (allowed ?? visible.all())
  if (uids.length === 0) return { kind: 'empty', patch }

  const paging = [
    ...(query.limit !== null ? [`limit=${query.limit}`] : []),
    ...(query.offset !== null ? [`offset=${query.offset}`] : []),
  ]
  // The upstream request target is the base URL's path, the path below the mount, and the query.
  const prefix = `${route.target.pathname.replace(/\/+$/, '')}${route.upstreamPath}?`
  const whole = narrowedQuery(query.kept, uids, paging)
  if (prefix.length + whole.length <= cfg.maxUrlLength) {
    return { kind: 'forward', patch: uniformNotFound({ ...patch, path: `${route.upstreamPath}?${whole}` }) }
  }
  // Split: each search may contribute at most offset + limit useful results; the executor skips
  // `offset` over the merged results and stops after `limit`.
  const offset = query.offset ?? 0
  const perSearch = query.limit !== null ? [`limit=${offset + query.limit}`] : []
  const fixed = prefix.length + narrowedQuery(query.kept, [], perSearch).length
  const lists = splitUids(uids, Math.max(1, cfg.maxUrlLength - fixed))
  return {
    kind: 'split',
    patch,
    searches: lists.map((list) => `${route.upstreamPath}?${narrowedQuery(query.kept, list, perSearch)}`),
    offset,
    limit: query.limit,
  }
}
