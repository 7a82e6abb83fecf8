// Forward stage, the executor: carry out a Plan (rewrite/plan.ts) — forward with the patch (the
// answer's body through the URL rewriter or the STOW recorder when the plan says so), answer an
// empty search, or run a split search. The one switch on the plan's kind; the decision that made
// the plan is done by then, so a decision endpoint can return the plan instead of calling this.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ResponsePlan } from '../rewrite/patch.js'
import type { Plan } from '../rewrite/plan.js'
import type { Forwarder, ForwardResult } from './forwarder.js'
import type { ResponseTransformFactory } from './response-transform.js'
import type { SearchClient } from './search-client.js'
import { answerEmpty, runSplitSearch } from './split-search.js'
import { StoreAnswerRecorder, type StudyRecorder } from './study-recorder.js'
import { DicomJsonUrlRewriter, isJsonContentType } from './url-rewriter.js'

export interface ExecutorDeps {
  forwarder: Forwarder
  searches: SearchClient
  /** Upstream searches of one split search in flight at once (`studies.parallelSearches`). */
  parallelSearches: number
  recorder: StudyRecorder
}

/** A compressed body cannot be rewritten (the plan asked for none; an upstream may still send one). */
function plainBody(encoding: string | string[] | undefined): boolean {
  return encoding === undefined || encoding === 'identity'
}

/** How the answer's body is transformed, from the plan's data; undefined when it passes as it is. */
export function responseTransform(
  response: ResponsePlan | undefined,
  recorder: StudyRecorder,
): ResponseTransformFactory | undefined {
  if (!response?.urls && !response?.record) return undefined
  const { urls, record } = response
  return ({ status, headers }) => {
    const json = isJsonContentType(headers['content-type']) && plainBody(headers['content-encoding'])
    // PS3.18 §10.5.3: 200 all stored, 202 some stored; anything else stored nothing.
    if (record && (status === 200 || status === 202)) {
      return new StoreAnswerRecorder(record, recorder, json ? urls : undefined)
    }
    return urls && json ? new DicomJsonUrlRewriter(urls) : null
  }
}

export function executePlan(
  plan: Plan,
  req: IncomingMessage,
  res: ServerResponse,
  target: URL,
  deps: ExecutorDeps,
): Promise<ForwardResult> {
  switch (plan.kind) {
    case 'forward':
      return deps.forwarder.forward(
        req,
        res,
        target,
        plan.patch,
        responseTransform(plan.patch.response, deps.recorder),
      )
    case 'empty':
      return Promise.resolve(answerEmpty(req, res, plan))
    case 'split':
      return runSplitSearch(req, res, target, plan, deps.searches, deps.parallelSearches)
  }
}
