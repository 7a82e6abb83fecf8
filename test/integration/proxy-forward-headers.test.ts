// What the forwarder itself adds and drops: Host and X-Forwarded-* as http-proxy-3's `xfwd` sets
// them; RFC 7230 hop-by-hop headers never cross in either direction, and a GET that meets a kept-alive socket the upstream has just
// closed is retried once on a fresh connection.
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { listenLoopback } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const { token } = await admin(redis.client).create({
  kind: 'album',
  album: 'A',
  perms: 'read',
  expiresIn: '1h',
})
const anyPath = { rules: [{ methods: '*', path: '/**', action: 'read' }] }

interface Seen {
  headers: IncomingHttpHeaders
  /** Which request this was on its connection (1 = first). */
  nth: number
}

/**
 * An upstream answering 200 with hop-by-hop headers of its own. It destroys the connection instead
 * of answering `/reset`, and with `dropSecond` the second request on any
 * connection (a socket closed while idle, seen late).
 */
async function startHeaderUpstream(opts: { dropSecond?: boolean } = {}) {
  const seen: Seen[] = []
  const perSocket = new WeakMap<Socket, number>()
  const server = createServer((req, res) => {
    const nth = (perSocket.get(req.socket) ?? 0) + 1
    perSocket.set(req.socket, nth)
    seen.push({ headers: req.headers, nth })
    if ((opts.dropSecond && nth === 2) || req.url?.startsWith('/reset')) {
      req.socket.destroy()
      return
    }
    res.writeHead(200, {
      'content-type': 'text/plain',
      connection: 'keep-alive, x-upstream-hop',
      'keep-alive': 'timeout=1',
      'x-upstream-hop': 'only for tokengate',
      'x-end-to-end': 'kept',
    })
    res.end('ok')
  })
  const listening = await listenLoopback(server)
  return { url: listening.url, host: listening.host, seen, stop: listening.stop }
}

/** The header upstream and a gate in front of it, both stopped at the end of `t`. */
async function startPair(t: Test, opts: { dropSecond?: boolean; trustedProxies?: string[] } = {}) {
  const upstream = await startHeaderUpstream(opts)
  t.teardown(upstream.stop)
  const gate = await startGate({
    redisUrl: redis.url,
    upstream: upstream.url,
    mount: anyPath,
    ...(opts.trustedProxies ? { config: { trustedProxies: opts.trustedProxies } } : {}),
  })
  t.teardown(gate.stop)
  return { upstream, gate }
}

t.test('Host and X-Forwarded-*', async (t) => {
  // The client (loopback) is a trusted proxy here: its X-Forwarded-* are kept and appended to.
  const { upstream, gate } = await startPair(t, { trustedProxies: ['127.0.0.1'] })

  t.test('the upstream gets its own Host and X-Forwarded-* appended to a trusted proxy’s', async (t) => {
    const res = await send(gate.url, {
      path: '/api/studies',
      headers: { ...bearer(token), 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'https' },
    })
    t.equal(res.status, 200)
    const seen = upstream.seen.at(-1)?.headers ?? {}
    t.equal(seen.host, upstream.host)
    t.equal(seen['x-forwarded-for'], '10.0.0.1,127.0.0.1')
    t.equal(seen['x-forwarded-proto'], 'https,http')
    t.equal(seen['x-forwarded-port'], String(gate.port))
    t.equal(seen['x-forwarded-host'], `127.0.0.1:${gate.port}`)
    t.equal(res.headers['x-end-to-end'], 'kept', 'end-to-end response headers come back')
  })
})

t.test('the forwarder drops RFC 7230 hop-by-hop headers both ways', async (t) => {
  const { upstream, gate } = await startPair(t)
  const res = await send(gate.url, {
    path: '/api/studies',
    headers: {
      ...bearer(token),
      connection: 'keep-alive, x-client-hop',
      'x-client-hop': 'only for tokengate',
      'keep-alive': 'timeout=30',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      'x-end-to-end': 'kept',
    },
  })
  t.equal(res.status, 200)
  const seen = upstream.seen.at(-1)?.headers ?? {}
  for (const name of ['x-client-hop', 'keep-alive', 'proxy-connection', 'te'])
    t.equal(seen[name], undefined, `request: ${name} stays with tokengate`)
  t.equal(seen['x-end-to-end'], 'kept', 'request: end-to-end headers go through')
  t.equal(res.headers['x-upstream-hop'], undefined, 'response: a header named by Connection stays behind')
  t.not(res.headers['keep-alive'], 'timeout=1', "response: the upstream's Keep-Alive is not the client's")
})

t.test('the forwarder retries a GET once when a kept-alive socket was closed under it', async (t) => {
  const { upstream, gate } = await startPair(t, { dropSecond: true })
  t.equal((await send(gate.url, { path: '/api/one', headers: bearer(token) })).status, 200)
  const res = await send(gate.url, { path: '/api/two', headers: bearer(token) })
  t.equal(res.status, 200, 'the second request succeeded')
  t.same(
    upstream.seen.map((s) => s.nth),
    [1, 2, 1],
    'it met the closed socket, then went through on a new connection',
  )
  const before = upstream.seen.length
  const get = await send(gate.url, { path: '/api/reset', headers: bearer(token) })
  t.equal(get.status, 502, 'a GET reset every time is 502 after one retry')
  t.equal(upstream.seen.length - before, 2, 'sent twice, not more')
  const upload = await send(gate.url, {
    method: 'POST',
    path: '/api/reset',
    headers: bearer(token),
    body: 'a body is never sent twice',
  })
  t.equal(upload.status, 502)
  t.equal(upstream.seen.length - before, 3, 'a request with a body is sent once')
})
