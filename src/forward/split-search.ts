// Forward stage, `scoping: studies`: carry out a QIDO search whose StudyInstanceUID list was split
// over several upstream searches (rewrite/study-scope.ts). Up to `parallel` searches are in flight;
// their JSON arrays are merged in order, element by element, straight to the client (an answer
// not read yet holds its upstream back), skipping the client's `offset` and stopping after its
// `limit` — the searches not needed then are never sent. Memory stays at one element per search.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { GateError, UpstreamUnavailable } from '../errors.js'
import type { Plan } from '../rewrite/plan.js'
import { classify, type ForwardResult, type Truncation } from './forwarder.js'
import { arrayElements, NotAJsonArray } from './json-array.js'
import { writeWithRoom as write } from './response-transform.js'
import type { SearchAnswer, SearchClient } from './search-client.js'
import { DicomJsonUrlRewriter } from './url-rewriter.js'

type SplitPlan = Extract<Plan, { kind: 'split' }>

const DICOM_JSON = 'application/dicom+json'
const OPEN = Buffer.from('[')
const COMMA = Buffer.from(',')
const CLOSE = Buffer.from(']')

/** Answer an empty QIDO result without asking the upstream (the search was narrowed to nothing). */
export function answerEmpty(
  req: IncomingMessage,
  res: ServerResponse,
  plan: Extract<Plan, { kind: 'empty' }>,
): ForwardResult {
  res.writeHead(200, { ...plan.patch.responseHeaders, 'content-type': DICOM_JSON, 'content-length': 2 })
  res.end(req.method === 'HEAD' ? undefined : '[]')
  return { status: 200, upstreamMs: 0, truncated: null }
}

export async function runSplitSearch(
  req: IncomingMessage,
  res: ServerResponse,
  target: URL,
  plan: SplitPlan,
  client: SearchClient,
  parallel: number,
): Promise<ForwardResult> {
  const started = performance.now()
  let upstreamMs = 0
  const headers = { ...plan.patch.setHeaders, accept: DICOM_JSON }
  const pending: Promise<SearchAnswer>[] = []
  const aborts: AbortController[] = []
  /** Drop the searches from `from` on (not needed, or the client went away). */
  const dropFrom = (from: number) => {
    for (let k = from; k < aborts.length; k++) aborts[k]?.abort()
  }
  const launch = (upTo: number) => {
    while (pending.length < Math.min(upTo, plan.searches.length)) {
      const abort = new AbortController()
      const sent = client.get(target, plan.searches[pending.length] as string, headers, abort.signal)
      sent.catch(() => {}) // awaited in turn below; a later one failing first is not unhandled
      pending.push(sent)
      aborts.push(abort)
    }
  }
  let current = 0
  const onClose = () => {
    if (!res.writableFinished) dropFrom(current)
  }
  res.once('close', onClose)

  // The body goes through the URL rewriter when the plan asks for it. The head is written with the
  // first element (or at the end): an upstream error before that still gets an answer — the
  // upstream's own when the first search fails, else 502 / 504.
  const rewriter = plan.patch.response?.urls ? new DicomJsonUrlRewriter(plan.patch.response.urls) : null
  const out: Writable = rewriter ?? res
  /** rewriter → client, joined: a failure of either ends both (the writes below then fail). */
  let piped: Promise<void> | null = null
  /** The first search's 200 came (its content type), or null: the head waits for the first byte. */
  let contentType: string | null = null
  const start = () => {
    if (res.headersSent) return
    res.writeHead(200, { ...plan.patch.responseHeaders, 'content-type': contentType ?? DICOM_JSON })
    if (!rewriter) return
    piped = pipeline(rewriter, res)
    piped.catch(() => {}) // awaited at the end; until then a failure shows as failing writes
  }

  let skipped = 0
  let sent = 0
  let truncated: Truncation | null = null
  try {
    if (req.method === 'HEAD') {
      start()
      res.end()
      return { status: 200, upstreamMs: 0, truncated: null }
    }
    search: for (let i = 0; i < plan.searches.length; i++) {
      current = i
      launch(i + parallel)
      const answer = await (pending[i] as Promise<SearchAnswer>)
      if (!upstreamMs) upstreamMs = performance.now() - started
      if (answer.statusCode === 204) {
        answer.body.destroy()
        continue
      }
      if (answer.statusCode !== 200) {
        if (contentType !== null)
          throw new UpstreamUnavailable('bad_response', `search ${i} answered ${answer.statusCode}`)
        // Nothing sent yet: the client sees the upstream's own answer (a bad filter, say).
        dropFrom(i + 1)
        res.writeHead(answer.statusCode, {
          ...plan.patch.responseHeaders,
          ...(answer.headers['content-type'] ? { 'content-type': answer.headers['content-type'] } : {}),
        })
        await pipeline(answer.body, res)
        break
      }
      contentType ??= answer.headers['content-type'] ?? DICOM_JSON
      for await (const element of arrayElements(answer.body)) {
        if (skipped < plan.offset) {
          skipped++
          continue
        }
        start() // with the first element: a search failing before it can still be answered 502 / 504
        await write(out, sent === 0 ? OPEN : COMMA)
        await write(out, element)
        sent++
        if (plan.limit !== null && sent >= plan.limit) break search // the loop destroys the body
      }
    }
    if (!res.writableEnded && res.statusCode === 200) {
      start()
      await write(out, sent === 0 ? Buffer.concat([OPEN, CLOSE]) : CLOSE)
      out.end()
      await piped
    }
  } catch (err) {
    dropFrom(current)
    if (!res.headersSent) {
      res.removeListener('close', onClose)
      if (err instanceof NotAJsonArray) throw new UpstreamUnavailable('bad_response', err.message)
      throw err instanceof GateError ? err : classify(err as NodeJS.ErrnoException)
    }
    // Mid-stream: the status is gone; cutting the connection is the only honest signal.
    truncated = (err as NodeJS.ErrnoException).code === 'UND_ERR_BODY_TIMEOUT' ? 'body' : 'econnreset'
    rewriter?.destroy()
    res.destroy()
  } finally {
    dropFrom(current + 1) // searches not needed any more (limit reached) are dropped
  }
  if (!res.writableFinished && !res.destroyed) {
    await new Promise<void>((resolve) => res.once('close', resolve))
  }
  return { status: res.statusCode, upstreamMs, truncated }
}
