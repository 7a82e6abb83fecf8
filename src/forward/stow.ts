// Forward stage, STOW-RS in `scoping: studies`: carry out a `store` plan. The client's body goes
// upstream through StowGuard (stow-parts.ts), which holds each part until StowAdmission
// (study-recorder.ts) has decided from the part's own DICOM header that its study may be written;
// the answer goes through StoreAnswerRecorder, which adds the admitted studies the upstream says it
// stored. A refused part errors the guard: undici aborts the upstream request (the part never
// leaves tokengate) and the client gets the guard's error (400 / 409), not a 502.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { finished } from 'node:stream'
import { BadRequest } from '../errors.js'
import type { Plan } from '../rewrite/plan.js'
import type { ExecutorDeps } from './execute.js'
import type { ForwardResult } from './forwarder.js'
import type { ResponseTransformFactory } from './response-transform.js'
import { StowGuard, stowBoundary } from './stow-parts.js'
import { type InstanceLister, StowAdmission } from './study-recorder.js'

export async function executeStore(
  plan: Extract<Plan, { kind: 'store' }>,
  req: IncomingMessage,
  res: ServerResponse,
  target: URL,
  deps: ExecutorDeps,
  listInstances: InstanceLister,
  transform: (admission: StowAdmission) => ResponseTransformFactory,
): Promise<ForwardResult> {
  // Refused before any byte goes upstream when the body cannot be split as the archive would: a
  // compressed body (which the archive may inflate) is not the bytes the guard reads.
  const encoding = req.headers['content-encoding']
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity')
    throw new BadRequest('bad_multipart')
  const boundary = stowBoundary(req.headers['content-type'])
  const admission = new StowAdmission(plan.into, plan.visible, deps.recorder, listInstances, plan.tokenId)
  const guard = new StowGuard(boundary, admission.admit)
  let refusal: Error | null = null
  guard.once('error', (err) => {
    refusal = err
    req.unpipe(guard)
  })
  // A client that goes away (or errors) ends the guard, and so the upstream request.
  finished(req, (err) => {
    if (err && !guard.destroyed) guard.destroy(err)
  })
  req.pipe(guard)
  try {
    return await deps.forwarder.forward(req, res, target, plan.patch, transform(admission), guard)
  } catch (err) {
    // The guard's own refusal, not the upstream abort it caused, is the answer.
    throw refusal ?? err
  }
}
