// Property-based, end to end: generated targets sent through a running gate to a recording
// upstream (a tenth of the unit suites' runs: each is a real HTTP round trip). Every answer is a
// 2xx from the upstream or a 4xx from the gate, never a 5xx; whatever reached the upstream, re-read
// by URLSearchParams, qs and a `;`-splitting parser, names exactly the token's album once; no
// answer body and no log line carries the secret.
import fc from 'fast-check'
import t from 'tap'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { params, pathArb, queryArb, RUNS, scopeLikeNames } from './arbitraries.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const gate = await startGate({
  redisUrl: redis.url,
  upstream: `${upstream.url}/dicom-web`,
  mount: { zip: true },
})
t.teardown(gate.stop)
const reader = await admin(redis.client).create({
  kind: 'album',
  album: 'A1',
  perms: 'read',
  expiresIn: '1h',
})

// What Node's client may put in a request line (it refuses controls and spaces itself).
const SENDABLE = /^[\x21-\x7e]*$/

t.test(
  `generated targets through the proxy: 4xx or exactly the token's scope upstream (${RUNS / 10} runs)`,
  async (t) => {
    const target = fc
      .tuple(pathArb, fc.option(queryArb))
      .map(([path, q]) => `/api${path}${q === null ? '' : `?${q}`}`)
      .filter((url) => SENDABLE.test(url))
    await fc.assert(
      fc.asyncProperty(target, fc.constantFrom('GET', 'HEAD', 'DELETE'), async (path, method) => {
        const before = upstream.requests.length
        const res = await send(gate.url, { method, path, headers: bearer(reader.token) })
        if (res.status >= 500) throw new Error(`${res.status} for ${path}`)
        if (res.text.includes(reader.token)) throw new Error('secret in the answer')
        if (upstream.requests.length === before) {
          if (res.status < 400) throw new Error(`${res.status} without the upstream for ${path}`)
          return
        }
        const url = upstream.requests.at(-1)?.url ?? ''
        const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : ''
        const seen = scopeLikeNames(query, ['album', 'inbox'])
        if (JSON.stringify(seen) !== '["album","album","album"]')
          throw new Error(`${url}: ${JSON.stringify(seen)}`)
        if (new URLSearchParams(query).get('album') !== 'A1') throw new Error(`${url}: not A1`)
        if (url.includes('#') || url.includes(';')) throw new Error(`${url}: separator forwarded`)
      }),
      { ...params, numRuns: Math.max(50, Math.round(RUNS / 10)) },
    )
    t.notOk(
      gate.logs.some((l) => l.includes(reader.token)),
      'no log line carries the secret',
    )
  },
)
