// Upstream failures become clear answers: refused → 502, no headers in time → 504, both with a
// JSON body; a failure after the response started cuts the client's stream instead of ending it
// as if complete. Agent sockets are not leaked.
import { request } from 'node:http'
import t from 'tap'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { freePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read',
  expiresIn: '1h',
})
const anyPath = { rules: [{ methods: '*', path: '/**', action: 'read' }] }

t.test('the forwarder', async (t) => {
  t.test('an upstream that refuses connections gives 502 bad_gateway with a JSON body', async (t) => {
    const closedPort = await freePort()
    const gate = await startGate({
      redisUrl: redis.url,
      upstream: `http://127.0.0.1:${closedPort}`,
      mount: anyPath,
    })
    t.teardown(gate.stop)
    const res = await send(gate.url, { path: '/api/studies', headers: bearer(token) })
    t.equal(res.status, 502)
    t.same(res.json(), { error: 'bad_gateway', reason: 'the upstream is unavailable' })
    t.match(res.headers['content-type'], /application\/json/)
    const line = gate.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'request')
    t.equal(line?.reason, 'econnrefused')
  })

  t.test(
    'an upstream slower than forward.headersTimeout gives 504 gateway_timeout, and the upstream sees the abort',
    async (t) => {
      const gate = await startGate({
        redisUrl: redis.url,
        upstream: upstream.url,
        mount: anyPath,
        config: { forward: { headersTimeout: 300 } },
      })
      t.teardown(gate.stop)
      const res = await send(gate.url, { path: '/api/slow-headers/3000', headers: bearer(token) })
      t.equal(res.status, 504)
      t.equal((res.json() as { error: string }).error, 'gateway_timeout')
      const seen = upstream.requests.at(-1)
      for (let i = 0; i < 100 && !seen?.aborted; i++) await new Promise((r) => setTimeout(r, 10))
      t.equal(seen?.aborted, true)
    },
  )

  t.test('an upstream that dies mid-body cuts the client stream rather than ending it cleanly', async (t) => {
    const gate = await startGate({ redisUrl: redis.url, upstream: upstream.url, mount: anyPath })
    t.teardown(gate.stop)
    const outcome = await new Promise<string>((resolve) => {
      const req = request(`${gate.url}/api/abort-mid`, { headers: bearer(token) }, (res) => {
        res.on('data', () => {})
        res.on('end', () => resolve(res.complete ? 'complete' : 'incomplete'))
        res.on('aborted', () => resolve('aborted'))
        res.on('error', () => resolve('error'))
      })
      req.on('error', () => resolve('error'))
      req.end()
    })
    t.not(outcome, 'complete', `the client learns the body is truncated (${outcome})`)
  })

  t.test('after errors and aborts the agents hold no active sockets', async (t) => {
    const gate = await startGate({ redisUrl: redis.url, upstream: upstream.url, mount: anyPath })
    t.teardown(gate.stop)
    for (let i = 0; i < 5; i++) {
      await send(gate.url, { path: '/api/studies', headers: bearer(token) })
      await new Promise<void>((resolve) => {
        const req = request(`${gate.url}/api/abort-mid`, { headers: bearer(token) }, (res) => {
          res.on('data', () => {})
          res.on('close', () => resolve())
        })
        req.on('error', () => resolve())
        req.end()
      })
    }
    let counts = gate.app.forwarder.socketCounts()
    for (let i = 0; i < 100 && counts.active > 0; i++) {
      await new Promise((r) => setTimeout(r, 10))
      counts = gate.app.forwarder.socketCounts()
    }
    t.equal(counts.active, 0, 'no socket left in use')
  })
})
