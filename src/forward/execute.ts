// Forward stage, the executor: carry out a Plan (rewrite/plan.ts) — forward with the patch (the
// answer's body through the URL rewriter when the plan says so; an upstream 404 replaced by
// tokengate's own in studies mode), answer an empty search, run a split search, a guarded STOW-RS
// (stow.ts), or a WADO-URI request once the archive confirms its instance (wado-verify.ts). The
// one switch on the plan's kind; the decision that made the plan is done by then, so a decision
// endpoint can return the plan instead of calling this.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { OutOfScope, UpstreamUnavailable } from '../errors.js'
import type { ResponsePlan, UpstreamPatch } from '../rewrite/patch.js'
import type { Plan } from '../rewrite/plan.js'
import { classify, type Forwarder, type ForwardResult } from './forwarder.js'
import { arrayElements, NotAJsonArray } from './json-array.js'
import type { ResponseTransformFactory } from './response-transform.js'
import type { SearchClient } from './search-client.js'
import { answerEmpty, runSplitSearch } from './split-search.js'
import { executeStore } from './stow.js'
import {
  type InstanceLister,
  StoreAnswerRecorder,
  type StowAdmission,
  type StudyRecorder,
} from './study-recorder.js'
import { DicomJsonUrlRewriter, isJsonContentType, rewriteDicomJsonUrls } from './url-rewriter.js'
import type { StudyMembership } from './wado-verify.js'

export interface ExecutorDeps {
  forwarder: Forwarder
  searches: SearchClient
  /** Upstream searches of one split search in flight at once (`studies.parallelSearches`). */
  parallelSearches: number
  recorder: StudyRecorder
  /** WADO-URI (scoping: studies): does an instance belong to the study that passed the check. */
  membership: StudyMembership
}

/** A compressed body cannot be rewritten (the plan asked for none; an upstream may still send one). */
function plainBody(encoding: string | string[] | undefined): boolean {
  return encoding === undefined || encoding === 'identity'
}

const SOP_INSTANCE_UID = '00080018'

/** The upstream's instances of a study, by a QIDO-RS search with the request's upstream headers. */
function instanceLister(client: SearchClient, target: URL, patch: UpstreamPatch): InstanceLister {
  return async (study) => {
    const headers = { ...patch.setHeaders, accept: 'application/dicom+json' }
    const path = `/studies/${study}/instances?includefield=${SOP_INSTANCE_UID}`
    const answer = await client.get(target, path, headers, new AbortController().signal)
    if (answer.statusCode === 204 || answer.statusCode === 404) {
      answer.body.destroy()
      return []
    }
    if (answer.statusCode !== 200) {
      answer.body.destroy()
      throw new UpstreamUnavailable('bad_response', `instance search answered ${answer.statusCode}`)
    }
    const sops: string[] = []
    try {
      for await (const row of arrayElements(answer.body)) {
        const sop = (JSON.parse(row.toString('utf8')) as Record<string, { Value?: unknown[] }>)[
          SOP_INSTANCE_UID
        ]
        if (typeof sop?.Value?.[0] === 'string') sops.push(sop.Value[0])
      }
    } catch (err) {
      // The upstream failed mid-answer (reset, silent, garbled): a 502 / 504, not a bug.
      if (err instanceof NotAJsonArray || err instanceof SyntaxError)
        throw new UpstreamUnavailable('bad_response', 'instance search answer is not a JSON array')
      throw classify(err as NodeJS.ErrnoException)
    }
    return sops
  }
}

/**
 * How the answer's body is transformed, from the plan's data; undefined when it passes as it is.
 * `admission` is the STOW-RS request side (what was sent), for `response.record`.
 */
export function responseTransform(
  response: ResponsePlan | undefined,
  recorder: StudyRecorder,
  listInstances: InstanceLister,
  admission?: StowAdmission,
): ResponseTransformFactory | undefined {
  if (!response?.urls && !response?.record && !response?.uniformNotFound) return undefined
  const { urls, record, uniformNotFound } = response
  return ({ status, headers }) => {
    // Thrown before any byte of the upstream's body is sent: the pipeline answers its own 404.
    if (uniformNotFound && status === 404) throw new OutOfScope('upstream_not_found')
    const json = isJsonContentType(headers['content-type']) && plainBody(headers['content-encoding'])
    // PS3.18 §10.5.3: 200 all stored, 202 some stored; anything else stored nothing.
    if (record && admission && (status === 200 || status === 202)) {
      return {
        stream: () =>
          new StoreAnswerRecorder(
            record,
            admission,
            status,
            recorder,
            listInstances,
            json ? urls : undefined,
          ),
      }
    }
    if (!urls || !json) return null
    return { stream: () => new DicomJsonUrlRewriter(urls), whole: (body) => rewriteDicomJsonUrls(body, urls) }
  }
}

/** Change a study set (unlink, adopt) and say so with 204; the archive is not touched. */
async function changeSet(
  res: ServerResponse,
  patch: UpstreamPatch,
  change: () => Promise<void>,
): Promise<ForwardResult> {
  await change()
  res.writeHead(204, patch.responseHeaders)
  res.end()
  return { status: 204, upstreamMs: 0, truncated: null }
}

export function executePlan(
  plan: Plan,
  req: IncomingMessage,
  res: ServerResponse,
  target: URL,
  deps: ExecutorDeps,
): Promise<ForwardResult> {
  switch (plan.kind) {
    case 'forward': {
      // Only requests whose answer is transformed pay for the closures.
      const transform = plan.patch.response
        ? responseTransform(
            plan.patch.response,
            deps.recorder,
            instanceLister(deps.searches, target, plan.patch),
          )
        : undefined
      return deps.forwarder.forward(req, res, target, plan.patch, transform)
    }
    case 'empty':
      return Promise.resolve(answerEmpty(req, res, plan))
    case 'split':
      return runSplitSearch(req, res, target, plan, deps.searches, deps.parallelSearches)
    case 'unlink':
      return changeSet(res, plan.patch, () => deps.recorder.remove(plan.from, [plan.study]))
    case 'adopt':
      return changeSet(res, plan.patch, () => deps.recorder.add(plan.into, [plan.study]))
    case 'store': {
      const list = instanceLister(deps.searches, target, plan.patch)
      const record = { ...plan.patch.response, record: { into: plan.into } }
      return executeStore(
        plan,
        req,
        res,
        target,
        deps,
        list,
        (admission) => responseTransform(record, deps.recorder, list, admission) as ResponseTransformFactory,
      )
    }
    case 'wado':
      return forwardWado(plan, req, res, target, deps)
  }
}

/** WADO-URI in studies mode: forward only once the archive confirms the instance is the study's. */
async function forwardWado(
  plan: Extract<Plan, { kind: 'wado' }>,
  req: IncomingMessage,
  res: ServerResponse,
  target: URL,
  deps: ExecutorDeps,
): Promise<ForwardResult> {
  if (!(await deps.membership.belongs(plan.qido, plan.patch.setHeaders, plan)))
    throw new OutOfScope('study_not_in_scope', plan.tokenId)
  const transform = responseTransform(
    plan.patch.response,
    deps.recorder,
    instanceLister(deps.searches, target, plan.patch),
  )
  return deps.forwarder.forward(req, res, target, plan.patch, transform)
}
