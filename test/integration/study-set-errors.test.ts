// Redis failures on the request path answer 503 with Retry-After and are counted in
// tokengate_redis_errors_total{kind="command"}: study-set writes (PUT and DELETE /studies/{uid},
// STOW-RS recording) and a user's album list. Redis is made to refuse writes only
// (min-replicas-to-write with no replica: NOREPLICAS), so every read before the write succeeds and
// only the write fails; a user's album list is made unreadable with a key of the wrong type.
import { createServer } from 'node:http'
import t from 'tap'
import { instance, stowBody } from '../helpers/dicom.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { listenLoopback } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)

const STORED = '1.2.840.9.1'
const SOP = '1.2.840.9.1.1'
let base = ''
const upstream = createServer((req, res) => {
  req.resume()
  const json = (body: unknown) => {
    const text = JSON.stringify(body)
    res.writeHead(200, {
      'content-type': 'application/dicom+json',
      'content-length': Buffer.byteLength(text),
    })
    res.end(text)
  }
  if (req.method === 'POST') {
    // A StoreInstances answer: one instance of a new study stored.
    return json({
      '00081199': {
        vr: 'SQ',
        Value: [
          {
            '00081155': { vr: 'UI', Value: [SOP] },
            '00081190': {
              vr: 'UR',
              Value: [`${base}/dicom-web/studies/${STORED}/series/1/instances/${SOP}`],
            },
          },
        ],
      },
    })
  }
  // Searches (the STOW-RS guard's "does the archive hold this study?") find nothing: a new study.
  json([])
})
// What a client stores: one instance of the new study STORED (the part guard reads its header).
const stow = stowBody([instance(STORED, SOP)])
const listening = await listenLoopback(upstream)
t.teardown(listening.stop)
base = listening.url

const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${listening.url}/dicom-web`,
  config: { scoping: 'studies' },
})
t.teardown(gate.stop)
await redis.client.sadd('tg:album:S:studies', '1.2.3')
const albumToken = (
  await admin(redis.client).create({
    kind: 'album',
    album: 'S',
    user: 'owner',
    perms: 'read,write,appropriate',
    expiresIn: '1h',
  })
).token
const userToken = (await admin(redis.client).create({ kind: 'user', user: 'lost', expiresIn: '1h' })).token

async function commandErrors(): Promise<number> {
  const metric = await gate.app.metrics.registry.getSingleMetricAsString('tokengate_redis_errors_total')
  return Number(/tokengate_redis_errors_total\{kind="command"\} (\d+)/.exec(metric)?.[1] ?? 0)
}

/** Redis refuses every write (NOREPLICAS) while `fn` runs; reads still work. */
async function writesRefused<T>(fn: () => Promise<T>): Promise<T> {
  await redis.client.config('SET', 'min-replicas-to-write', '1')
  try {
    return await fn()
  } finally {
    await redis.client.config('SET', 'min-replicas-to-write', '0')
  }
}

const cases: [string, () => ReturnType<typeof send>][] = [
  [
    'PUT /studies/{uid} (into the owner inbox)',
    () =>
      send(gate.url, { method: 'PUT', path: '/api/studies/1.2.3', headers: bearer(albumToken), body: '' }),
  ],
  [
    'DELETE /studies/{uid} (out of the album)',
    () => send(gate.url, { method: 'DELETE', path: '/api/studies/1.2.3', headers: bearer(albumToken) }),
  ],
  [
    'a STOW-RS store recorded into the album',
    () =>
      send(gate.url, {
        method: 'POST',
        path: '/api/studies',
        headers: { ...bearer(albumToken), 'content-type': stow.type },
        body: stow.body,
      }),
  ],
]
for (const [name, request] of cases) {
  t.test(
    `${name} while Redis refuses writes: 503 with Retry-After, counted as a Redis command error`,
    async (t) => {
      // The token and the album's set are cached first: only the write meets the failure.
      t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(albumToken) })).status, 200)
      const before = await commandErrors()
      const res = await writesRefused(request)
      t.equal(res.status, 503)
      t.equal(res.headers['retry-after'], '1')
      t.same(res.json(), { error: 'service_unavailable', reason: 'the token store is unavailable' })
      t.ok((await commandErrors()) > before, 'counted in tokengate_redis_errors_total{kind="command"}')
    },
  )
}

t.test("a user's album list that Redis cannot read: 503, counted as a Redis command error", async (t) => {
  await redis.client.set('tg:user:lost:albums', 'not a set')
  const before = await commandErrors()
  const res = await send(gate.url, { path: '/api/studies', headers: bearer(userToken) })
  t.equal(res.status, 503)
  t.equal(res.headers['retry-after'], '1')
  t.ok((await commandErrors()) > before, 'counted in tokengate_redis_errors_total{kind="command"}')
})
