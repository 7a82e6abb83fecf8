// Upstream failures become clear answers: refused → 502, no headers in time → 504, both with a
// JSON body; a failure after the response started cuts the client's stream instead of ending it
// as if complete. Agent sockets are not leaked.
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, request, type ServerResponse } from 'node:http'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { instance, stowBody } from '../helpers/dicom.js'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { freePort } from '../helpers/ports.js'
import { serveTokengate, writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'
import { listenLoopback, startRecordingUpstream } from '../helpers/upstream.js'
import { probeUntil, waitFor } from '../helpers/wait.js'

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
      t.equal(await probeUntil(() => seen?.aborted, Boolean), true)
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

  /** A request through a gate whose upstream writes `answer` (raw bytes) and closes. */
  async function viaRawUpstream(t: Test, answer: string) {
    const raw = createNetServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => socket.end(answer))
    })
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))
    t.teardown(() => raw.close())
    const port = (raw.address() as AddressInfo).port
    const gate = await startGate({
      redisUrl: redis.url,
      upstream: `http://127.0.0.1:${port}`,
      mount: anyPath,
    })
    t.teardown(gate.stop)
    const outcome = await new Promise<string>((resolve) => {
      const req = request(`${gate.url}/api/x`, { headers: bearer(token) }, (res) => {
        const parts: Buffer[] = []
        res.on('data', (c: Buffer) => parts.push(c))
        res.on('close', () =>
          resolve(`${res.complete ? 'complete' : 'cut'} ${res.statusCode} ${Buffer.concat(parts)}`),
        )
      })
      req.on('error', () => resolve('failed before an answer'))
      req.end()
    })
    // The access-log line is written when the handling ends, which may be just after the client saw it.
    const line = await waitFor('the access-log line', () =>
      gate.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'request'),
    )
    return { outcome, reason: line.reason }
  }
  const HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000\r\n\r\n'

  t.test('an upstream that answers invalid HTTP gives 502 bad_gateway, logged as bad_response', async (t) => {
    const got = await viaRawUpstream(t, 'HTTP/1.1 OK nope\r\n\r\n')
    t.equal(got.outcome, 'complete 502 {"error":"bad_gateway","reason":"the upstream is unavailable"}')
    t.equal(got.reason, 'bad_response')
  })

  t.test('an upstream that closes right after its headers (no body byte yet) gives 502', async (t) => {
    const got = await viaRawUpstream(t, HEAD)
    t.match(got.outcome, /^complete 502 /, 'answered as a failure, never a short body presented as complete')
  })

  t.test('an upstream that closes after part of the body cuts the client stream', async (t) => {
    const got = await viaRawUpstream(t, `${HEAD}abc`)
    t.equal(got.outcome, 'cut 200 abc', 'never a short body presented as complete')
    t.equal(got.reason, 'econnreset')
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
    const counts = await probeUntil(
      () => gate.app.forwarder.socketCounts(),
      (c) => c.active === 0,
      { intervalMs: 10 },
    )
    t.equal(counts.active, 0, 'no socket left in use')
  })
})

// Mid-body failures of answers tokengate rewrites (DICOM JSON URLs streamed, a STOW-RS answer held
// back for recording) once ended in an uncaught exception: the process died for every client. A
// real `tokengate serve` process runs here, so a crash shows as its exit.
t.test('mid-body failures of rewritten answers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tokengate-midbody-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  let base = ''
  const element = () =>
    JSON.stringify({ '00081190': { vr: 'UR', Value: [`${base}/dicom-web/studies/1.2.1`] } })
  /** Headers, then part of a DICOM JSON body (a RetrieveURL in it), then `then`. */
  const partial = (res: ServerResponse, length: number | null, then: 'reset' | 'silent') => {
    res.writeHead(200, {
      'content-type': 'application/dicom+json',
      ...(length === null ? {} : { 'content-length': length }),
    })
    res.write(`[${Array.from({ length: 300 }, element).join(',')},`, () => {
      if (then === 'reset') setTimeout(() => res.socket?.destroy(), 20)
    })
  }
  const misbehaving = createServer((req, res) => {
    req.resume()
    const path = req.url?.split('?')[0] ?? ''
    if (path.endsWith('/studies/1.2.1/metadata')) return partial(res, null, 'reset')
    if (path.endsWith('/studies/1.2.2/metadata')) return partial(res, 200_000, 'reset')
    if (path.endsWith('/studies/1.2.3/metadata')) return partial(res, null, 'silent')
    // STOW-RS answers
    if (req.method === 'POST') return partial(res, null, path.endsWith('/1.2.5') ? 'silent' : 'reset')
    const body = `[${element()}]`
    res.writeHead(200, { 'content-type': 'application/dicom+json', 'content-length': body.length })
    res.end(body)
  })
  const listening = await listenLoopback(misbehaving)
  t.teardown(listening.stop)
  base = listening.url
  await redis.client.sadd('tg:album:M:studies', '1.2.1', '1.2.2', '1.2.3', '1.2.4', '1.2.5')
  const { token: writer } = await admin(redis.client).create({
    kind: 'album',
    album: 'M',
    perms: 'read,write',
    expiresIn: '1h',
  })
  // One process per case, so each case shows its own crash.
  const startGateProcess = async () => {
    const gate = await serveTokengate(
      await writeConfig(
        dir,
        'gate.yaml',
        `listen: { host: 127.0.0.1, port: 0 }
redis: { url: "${redis.url}" }
metrics: { port: 0 }
scoping: studies
forward: { idleTimeout: 300ms }
mounts:
  - path: /api
    upstream: ${listening.url}/dicom-web
`,
      ),
    )
    return gate
  }

  const cases: [string, string, string, string][] = [
    [
      'a chunked DICOM JSON answer rewritten as a stream, reset mid-body',
      'GET',
      '/api/studies/1.2.1/metadata',
      'cut 200',
    ],
    [
      'a DICOM JSON answer over 64 KiB rewritten as a stream, reset mid-body',
      'GET',
      '/api/studies/1.2.2/metadata',
      'cut 200',
    ],
    [
      'a DICOM JSON answer rewritten as a stream, silent past forward.idleTimeout',
      'GET',
      '/api/studies/1.2.3/metadata',
      'cut 200',
    ],
    ['a STOW-RS answer held back for recording, reset mid-body', 'POST', '/api/studies', 'complete 502'],
    [
      'a STOW-RS answer held back for recording, silent past forward.idleTimeout',
      'POST',
      '/api/studies/1.2.5',
      'complete 504',
    ],
  ]
  for (const [name, method, path, want] of cases) {
    t.test(`${name}: the client sees a visibly cut or failed answer and the process lives on`, async (t) => {
      const gate = await startGateProcess()
      t.teardown(() => gate.stop('SIGKILL'))
      const got = await fetchOutcome(`${gate.url}${path}`, method, writer)
      // Cut once the status went out; an error answer while nothing was sent yet.
      t.equal(got.outcome, want, 'never a short body presented as complete')
      const next = await send(gate.url, { path: '/api/studies/1.2.4/metadata', headers: bearer(writer) })
      t.equal(next.status, 200, 'the next request is served')
      t.equal(gate.proc.exitCode, null, 'the process did not exit')
      t.equal(gate.proc.signalCode, null)
    })
  }
})

/** How a request ended: `complete <status>`, `cut <status>` (framing not finished) or `error`. */
function fetchOutcome(url: string, method: string, token: string): Promise<{ outcome: string }> {
  // A STOW-RS body the part guard lets through: one instance of a study of album M.
  const stow = stowBody([instance('1.2.5', '1.2.5.1.1')])
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method,
        headers: { ...bearer(token), 'content-type': method === 'POST' ? stow.type : 'application/dicom' },
      },
      (res) => {
        res.on('data', () => {})
        res.on('close', () => resolve({ outcome: `${res.complete ? 'complete' : 'cut'} ${res.statusCode}` }))
      },
    )
    req.on('error', () => resolve({ outcome: 'error' }))
    req.end(method === 'POST' ? stow.body : undefined)
  })
}
