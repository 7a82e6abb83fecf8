// An exception in tokengate's own code while it forwards (a response rewrite that throws, in any
// of its places) fails that request — 500 before the answer started, a cut connection after —
// and never reaches undici's socket or the process. The forwarder runs here with a minimal front
// server that answers a rejected forward as the pipeline does (toHttpError).
import { createServer } from 'node:http'
import { Transform } from 'node:stream'
import t from 'tap'
import { configSchema } from '../../src/config/schema.js'
import { toHttpError } from '../../src/errors.js'
import type { ResponseTransformFactory } from '../../src/forward/response-transform.js'
import { createForwarder } from '../../src/forward/undici-forwarder.js'
import { send } from '../helpers/http.js'
import { listenLoopback } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const json = Buffer.from(JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ i }))))
const upstream = await listenLoopback(
  createServer((req, res) => {
    req.resume()
    const chunked = req.url?.includes('chunked')
    res.writeHead(200, {
      'content-type': 'application/dicom+json',
      ...(chunked ? {} : { 'content-length': json.length }),
    })
    // Two writes apart in time: a streaming rewrite sees two chunks.
    res.write(json.subarray(0, 100), () => setTimeout(() => res.end(json.subarray(100)), 20))
  }),
)
t.teardown(upstream.stop)

const forwarder = createForwarder(
  configSchema.parse({ mounts: [{ path: '/', upstream: upstream.url }] }).forward,
)
t.teardown(() => forwarder.close())

class Bug extends Error {}
let transform: ResponseTransformFactory | undefined
const errors: unknown[] = []
const front = await listenLoopback(
  createServer((req, res) => {
    const patch = { path: req.url ?? '/', removeHeaders: [], setHeaders: {}, responseHeaders: {} }
    forwarder.forward(req, res, new URL(upstream.url), patch, transform).catch((err: unknown) => {
      errors.push(err)
      const answer = toHttpError(err)
      if (res.headersSent) return void res.destroy()
      res.writeHead(answer.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(answer.body))
    })
  }),
)
t.teardown(front.stop)

/** A rewrite whose stream throws (synchronously, in _transform) at its `at`-th chunk. */
function throwingStream(at: number): Transform {
  let n = 0
  return new Transform({
    transform(chunk, _enc, done) {
      if (++n >= at) throw new Bug('rewrite bug')
      done(null, chunk)
    },
  })
}

const cases: [string, string, ResponseTransformFactory, number][] = [
  [
    'the rewrite factory throws',
    '/small',
    () => {
      throw new Bug('factory bug')
    },
    500,
  ],
  [
    'the whole-body rewrite throws',
    '/small',
    () => ({
      stream: () => new Transform(),
      whole: () => {
        throw new Bug('whole bug')
      },
    }),
    500,
  ],
  [
    'the streaming rewrite throws on its first chunk',
    '/chunked',
    () => ({ stream: () => throwingStream(1) }),
    500,
  ],
]
for (const [name, path, factory, status] of cases) {
  t.test(
    `${name}: the request gets ${status} with the bug's error, and the next request is served`,
    async (t) => {
      transform = factory
      const before = errors.length
      const res = await send(front.url, { path })
      t.equal(res.status, status)
      t.type(errors[before], Bug, 'the forward rejected with the bug itself (logged as a bug)')
      t.equal(toHttpError(errors[before]).reason, 'bug')
      transform = undefined
      t.equal((await send(front.url, { path })).status, 200)
    },
  )
}

t.test('a streaming rewrite that throws after bytes went out cuts the client', async (t) => {
  transform = () => ({ stream: () => throwingStream(2) })
  const before = errors.length
  await t.rejects(send(front.url, { path: '/chunked' }), 'never a short body presented as complete')
  t.type(
    await waitFor('the forward to settle', () => errors[before]),
    Bug,
    'the forward rejected with the bug',
  )
  transform = undefined
  t.equal((await send(front.url, { path: '/chunked' })).status, 200)
})
