// The configurations a run measures, side by side: baselines (direct, bare http-proxy-3, undici
// Pool.stream, nginx proxy_pass, nginx auth_request + token service) and tokengate scenarios (its
// one forwarder). Each says where to send load, what every request looks like (rotating over many
// tokens), which processes serve it (their CPU is counted; the upstream's separately) and what
// status to expect.

/**
 * @typedef {import('./load.js').RequestSpec} RequestSpec
 * @typedef {object} Scenario
 * @property {string} id
 * @property {string} label
 * @property {'baseline' | 'tokengate'} kind
 * @property {string} url
 * @property {(i: number) => RequestSpec} gen
 * @property {number[]} pids      serving processes between client and upstream (CPU counted)
 * @property {number} expect      expected status
 * @property {boolean} latency    also measured at a moderate fixed rate
 * @property {(() => Promise<void>)} [before]  called before each measured run
 * @property {(() => Promise<Record<string, number>>)} [after]  extra figures after each run
 * @property {number} [streams]   HTTP/2: one connection, this many concurrent streams (else autocannon)
 */

/**
 * @param {RequestSpec[]} specs
 * @returns {(i: number) => RequestSpec}
 */
const rotate = (specs) => (i) => /** @type {RequestSpec} */ (specs[i % specs.length])

/**
 * @param {object} o
 * @param {{ url: string, pid: number }} o.upstream
 * @param {{ pid: number }} o.redis
 * @param {Record<string, { url: string, pid: number } | null>} o.servers  by role: httpProxy, undici,
 *   nginxProxy, nginxAuth, tokenService, nginxDecide (nginx + the quiet gate's decision endpoint),
 *   and tokengate's gate, quiet (access log off), miss (cache
 *   off), authOff, before (the --baseline-build checkout's gate); over TLS (issue 17): gateTls
 *   (HTTPS), gateH2 (HTTPS + HTTP/2), nginxTls and nginxAuthTls (HTTPS + HTTP/2 on one port)
 * @param {{ album: string[], user: string[], unknown: string[], api?: string[] }} o.tokens  secrets;
 *   api: tokens whose fifth grant is `device:dev<i>:GetDeviceStats,…` (token i reads dev<i>)
 * @param {(() => Promise<number>)} o.redisLookups  HGETALL calls so far (INFO commandstats)
 * @param {number} o.negativeTtlMs
 * @param {number} [o.h2Streams]  concurrent streams of the HTTP/2 rows (default 100)
 * @returns {Scenario[]}
 */
export function scenarios(o) {
  const bearer = (/** @type {string} */ t) => ({ authorization: `Bearer ${t}` })
  const albumBearer = o.tokens.album.map(bearer)
  // Every configuration gets the same request bytes (a Bearer header included), so the
  // difference between rows is what the server does with them.
  const passthrough = rotate(albumBearer.map((headers) => ({ path: '/dicom-web/studies?limit=10', headers })))
  const viaGate = rotate(albumBearer.map((headers) => ({ path: '/api/studies?limit=10', headers })))
  const s = o.servers
  const redisPid = o.redis.pid
  /** @type {Scenario[]} */
  const list = [
    {
      id: 'direct',
      label: 'direct to upstream',
      kind: 'baseline',
      url: o.upstream.url,
      gen: passthrough,
      pids: [],
      expect: 200,
      latency: true,
    },
  ]
  /**
   * A row served by `servers[role]` (skipped when that server is not there, e.g. no nginx). Its
   * CPU is the server's, plus Redis for rows whose auth uses it.
   * @param {string} id @param {string} label @param {string} role
   * @param {Omit<Partial<Scenario>, 'id' | 'label' | 'url'> & { extraPids?: number[] }} rest
   */
  const add = (id, label, role, rest) => {
    const server = s[role]
    if (!server) return
    const { extraPids = [], ...fields } = rest
    list.push({
      id,
      label,
      kind: 'tokengate',
      url: server.url,
      gen: viaGate,
      pids: [server.pid, ...extraPids],
      expect: 200,
      latency: false,
      ...fields,
    })
  }
  const withRedis = { extraPids: [redisPid] }
  add('http-proxy-3', 'bare http-proxy-3 pass-through', 'httpProxy', { kind: 'baseline', gen: passthrough })
  add('undici', 'undici Pool.stream() pass-through', 'undici', {
    kind: 'baseline',
    gen: passthrough,
    latency: true,
  })
  add('nginx-proxy', 'nginx proxy_pass (keep-alive)', 'nginxProxy', { kind: 'baseline', gen: passthrough })
  add('nginx-auth', 'nginx auth_request + Node token service', 'nginxAuth', {
    kind: 'baseline',
    gen: passthrough,
    latency: true,
    extraPids: s.tokenService ? [s.tokenService.pid, redisPid] : [redisPid],
  })

  // Issue 15.4: the same nginx, asking tokengate's decision endpoint instead (a cache hit on the
  // quiet gate), and forwarding the scoped URI it answers: the decision's CPU beside the peer's.
  add('nginx-decide', 'nginx auth_request + tokengate decision endpoint', 'nginxDecide', {
    latency: true,
    extraPids: s.quiet ? [s.quiet.pid, redisPid] : [redisPid],
  })

  add('auth-off', 'tokengate forwarding, auth off', 'authOff', {
    latency: true,
    // Redis is idle here; counted anyway so that hit and auth-off rows sum the same processes.
    ...withRedis,
  })
  add('hit', 'Bearer, cache hit', 'gate', { latency: true, ...withRedis })
  // Issue 17: the same cache hit over HTTPS/1.1 (autocannon, same connections) and HTTP/2 (a
  // viewer's load: one connection, many streams), beside nginx over the same TLS and HTTP/2.
  const streams = o.h2Streams ?? 100
  const h2 = `HTTP/2 (1 connection, ${streams} streams)`
  add('hit-tls', 'Bearer, cache hit, HTTPS/1.1', 'gateTls', withRedis)
  add('hit-h2', `Bearer, cache hit, ${h2}`, 'gateH2', { ...withRedis, streams })
  /**
   * nginx over TLS: one server answers both rows (HTTPS/1.1 and HTTP/2 on one port, by ALPN).
   * @param {string} id @param {string} label @param {string} role @param {number[]} extraPids
   */
  const nginxTls = (id, label, role, extraPids) => {
    const row = { kind: /** @type {const} */ ('baseline'), gen: passthrough, extraPids }
    add(`${id}-tls`, `${label}, HTTPS/1.1`, role, row)
    add(`${id}-h2`, `${label}, ${h2}`, role, { ...row, streams })
  }
  nginxTls('nginx', 'nginx proxy_pass', 'nginxTls', [])
  nginxTls('nginx-auth', 'nginx auth_request + Node token service', 'nginxAuthTls', [
    ...(s.tokenService ? [s.tokenService.pid] : []),
    redisPid,
  ])
  add('hit-before', 'Bearer, cache hit, baseline build (--baseline-build)', 'before', {
    latency: true,
    ...withRedis,
  })
  // Issue 16: the same cache hit, the answer naming the upstream's own URLs four times (rewritten).
  const withUrls = rotate(albumBearer.map((headers) => ({ path: '/api/studies?limit=10&urls=4', headers })))
  add('hit-urls', 'Bearer, cache hit, 4 upstream URLs rewritten', 'gate', { ...withRedis, gen: withUrls })
  add('hit-urls-before', 'Bearer, cache hit, 4 upstream URLs rewritten, baseline build', 'before', {
    ...withRedis,
    gen: withUrls,
  })
  add('hit-quiet', 'Bearer, cache hit, access log off', 'quiet', { latency: true, ...withRedis })
  add('basic', 'Basic, cache hit', 'gate', {
    ...withRedis,
    gen: rotate(
      o.tokens.album.map((t) => ({
        path: '/api/studies?limit=10',
        headers: { authorization: `Basic ${Buffer.from(`bench:${t}`).toString('base64')}` },
      })),
    ),
  })
  add('link', 'link /api/link/<t>/, cache hit', 'gate', {
    ...withRedis,
    gen: rotate(o.tokens.album.map((t) => ({ path: `/api/link/${t}/studies?limit=10` }))),
  })
  // Issue 13: an api token with five grants against an album token, both cache hits on the same
  // gate, both on a path whose answer is passed through (the `hit` row's /studies answer is also
  // rewritten as DICOM JSON, which resource mounts never do): the difference is the decision.
  add('hit-raw', 'Bearer, cache hit, answer not rewritten', 'gate', {
    ...withRedis,
    gen: rotate(albumBearer.map((headers) => ({ path: '/api/studies/1.2.3/rendered', headers }))),
  })
  const api = o.tokens.api ?? []
  if (api.length)
    add('api', 'api token, five grants, cache hit', 'gate', {
      ...withRedis,
      gen: rotate(api.map((t, i) => ({ path: `/iot/devices/dev${i}/stats`, headers: bearer(t) }))),
    })
  add('miss', 'Bearer, cache off: Redis every request', 'miss', withRedis)
  add('miss-before', 'Bearer, cache off, baseline build (--baseline-build)', 'missBefore', withRedis)
  add('album', 'user token, ?album= scoping rewrite', 'gate', {
    ...withRedis,
    gen: rotate(
      o.tokens.user.map((t) => ({ path: '/api/studies?limit=10&album=bench', headers: bearer(t) })),
    ),
  })
  add('deny', '403 denial (read token, DELETE)', 'gate', {
    ...withRedis,
    expect: 403,
    gen: rotate(albumBearer.map((headers) => ({ method: 'DELETE', path: '/api/studies/1.2.3', headers }))),
  })
  let lookups0 = 0
  add('flood', `unknown-token flood, ${o.tokens.unknown.length} distinct`, 'gate', {
    ...withRedis,
    expect: 401,
    gen: rotate(o.tokens.unknown.map((t) => ({ path: '/api/studies?limit=10', headers: bearer(t) }))),
    before: async () => {
      // Let negative entries from an earlier round expire, so every run starts cold.
      await new Promise((r) => setTimeout(r, o.negativeTtlMs))
      lookups0 = await o.redisLookups()
    },
    after: async () => ({ redisLookups: (await o.redisLookups()) - lookups0 }),
  })
  return list
}
