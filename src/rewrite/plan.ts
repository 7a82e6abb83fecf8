// Rewrite stage, the plan: what to do with an allowed request, as data — forward it with this
// patch, answer `[]` without calling the upstream, or run these upstream searches and merge them.
// The decision (route → credential → lookup → decide → plan) is kept apart from carrying it out
// (forward/execute.ts), so a decision endpoint can return the plan without executing it.
import { NotAcceptable } from '../errors.js'
import type { Decision } from '../policy/decide.js'
import type { VisibleStudies } from '../policy/visible-studies.js'
import type { RouteMatch } from '../route/match.js'
import type { TokenStore } from '../token/store.js'
import type { StudySetRef } from '../token/study-sets.js'
import type { ClientView } from './identity-headers.js'
import { planRewrite, type RewriteConfig, type UpstreamPatch } from './patch.js'
import { type PublicView, planResponseUrls } from './response-urls.js'
import { planStudyScope } from './study-scope.js'

export type Plan =
  /** Forward the request with this patch. */
  | { kind: 'forward'; patch: UpstreamPatch }
  /** A QIDO search narrowed to no study at all: answer an empty result, the upstream is not asked. */
  | { kind: 'empty'; patch: UpstreamPatch }
  /**
   * A QIDO search whose StudyInstanceUID list is too long for one URL: run `searches` (paths +
   * queries relative to the target, in order) with the patch's headers, merge their JSON arrays
   * in order, skip `offset` results and stop after `limit` (null: all).
   */
  | { kind: 'split'; patch: UpstreamPatch; searches: string[]; offset: number; limit: number | null }
  /**
   * scoping: studies, `DELETE /studies/{uid}`: take the study out of the album (or inbox) and
   * answer 204; the archive is not asked (other albums may hold the same study).
   */
  | { kind: 'unlink'; patch: UpstreamPatch; from: StudySetRef; study: string }
  /**
   * scoping: studies, `PUT /studies/{uid}` ("appropriate", as KHEOPS): add a study the caller can
   * see to an album it may add to, or to its inbox, and answer 204; the archive is not asked.
   */
  | { kind: 'adopt'; patch: UpstreamPatch; into: StudySetRef; study: string }
  /**
   * scoping: studies, STOW-RS: forward the body through the part guard (forward/stow.ts): each
   * part goes upstream only if its study (read from its DICOM header) is `visible` or new to the
   * archive; studies stored join `into` once the upstream answers success for them.
   */
  | { kind: 'store'; patch: UpstreamPatch; into: StudySetRef; visible: VisibleStudies; tokenId: string }
  /**
   * scoping: studies, WADO-URI: `study` is visible; forward once the archive confirms (by a QIDO
   * search under `qido`, cached) that `series` and `object` belong to it.
   */
  | {
      kind: 'wado'
      patch: UpstreamPatch
      qido: URL
      study: string
      series: string | null
      object: string | null
      tokenId: string
    }

/** What the planner reads from the request beyond the route. */
export interface RequestView extends ClientView, PublicView {
  method: string
}

const DEFAULT_STUDIES = { maxUrlLength: 8000, parallelSearches: 4 }

/** DICOMweb answers in DICOM JSON: searches, `…/metadata`, and STOW-RS responses. */
function answersDicomJson(method: string, route: RouteMatch): boolean {
  if (route.wado) return false
  if (method === 'POST') return true
  // The last segment, trailing slashes ignored (no regex: this runs on every request).
  const path = route.subPath
  let end = path.length
  while (end > 0 && path.charCodeAt(end - 1) === 0x2f) end--
  const last = path.slice(path.lastIndexOf('/', end - 1) + 1, end)
  return last === 'studies' || last === 'series' || last === 'instances' || last === 'metadata'
}

/**
 * The config's removal list plus `accept-encoding`, one array per config array: the forwarder
 * turns a removal list into a Set once per array identity, so a fresh array per request would
 * cost a Set (and a WeakMap entry) per request.
 */
const plusEncoding = new WeakMap<readonly string[], readonly string[]>()
function withoutEncoding(remove: readonly string[]): readonly string[] {
  let list = plusEncoding.get(remove)
  if (!list) {
    list = Object.freeze([...remove, 'accept-encoding'])
    plusEncoding.set(remove, list)
  }
  return list
}

/**
 * Plan an allowed request: synchronously in `query` mode, by a promise when study sets must be
 * read (`studies` mode). Throws NotAcceptable (zip from an upstream that has none), OutOfScope
 * (scoping: studies, a study the token may not see), BadRequest, StoreUnavailable.
 */
export function planRequest(
  route: RouteMatch,
  decision: Decision,
  view: RequestView,
  cfg: RewriteConfig,
  store: Pick<TokenStore, 'albumStudies' | 'inboxStudies' | 'userAlbums'>,
): Plan | Promise<Plan> {
  // A resource mount fronts a generic API: no zip rule, no DICOM JSON to rewrite, no study sets.
  if (route.resource) return { kind: 'forward', patch: planRewrite(route, decision, view, cfg) }
  // Decided after the token and its `download` permission: a refusal says nothing to strangers.
  if (route.download && !route.mount.config.zip) throw new NotAcceptable('zip_unsupported', decision.tokenId)
  // A fresh patch: completed in place.
  const patch = planRewrite(route, decision, view, cfg)
  if (route.mount.config.rewriteResponseUrls && answersDicomJson(view.method, route)) {
    // The rewriter reads plain bytes: ask the upstream not to compress what it will rewrite.
    patch.removeHeaders = withoutEncoding(patch.removeHeaders)
    patch.response = { urls: planResponseUrls(route, view, cfg.publicUrl) }
  }
  if (cfg.scoping !== 'studies') return { kind: 'forward', patch }
  return planStudyScope(view.method, route, decision, patch, store, cfg.studies ?? DEFAULT_STUDIES)
}
