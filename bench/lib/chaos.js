// Chaos: an upstream that misbehaves at random and clients that check every answer they get, for
// a bounded time against a running tokengate process (scoping: studies, so its answers go through
// URL rewriting, split searches and STOW-RS recording). Shared by test/integration/chaos.test.ts
// (a few seconds, in `npm test`) and bench/soak.js (`--chaos-seconds`, the longer form).
//
// Each upstream request, at random: answers normally; resets before headers; resets mid-body;
// answers slowly (headers late, sometimes past forward.headersTimeout; body in slow steps,
// sometimes silent past forward.idleTimeout); sends invalid HTTP (before headers, or a bad chunk
// mid-body); or closes right after its headers. Bodies come with a Content-Length or chunked,
// small (rewritten whole) or over 64 KiB (rewritten as a stream).
//
// A client answer is "complete" when its framing ended (Node's `res.complete`) and then it must be
// right: a 200 has the whole body (the byte count and sha256 the upstream announced, or every
// element of the DICOM JSON with its URLs rewritten to tokengate's), an error is tokengate's JSON
// 502 / 504. Otherwise it must be visibly cut (the connection closed before its framing ended).
// A complete answer that is wrong — a short body presented as complete — is a violation.
import { createHash } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { Agent, createServer, request } from 'node:http'
import { stowBody } from './stow-body.js'

/** The album the reading token sees: enough UIDs to split its study search in several. */
export const CHAOS_ALBUM = 'chaos'
/** Numbers the studies the chaos clients store, one new study per STOW. */
let stowSerial = 0

export const CHAOS_STUDIES = Array.from({ length: 60 }, (_, i) => `1.2.826.0.1.3680043.9.${1000 + i}`)
/** The album STOW-RS stores are recorded into (it grows; the reading album does not). */
export const CHAOS_STOW_ALBUM = 'chaos-stow'

/**
 * tokengate's config for a chaos run: short upstream timeouts so that slow answers hit them, and a
 * small maxUrlLength so that a study search is split.
 * @param {{ redisUrl: string, upstreamUrl: string, port?: number, workers?: number }} o
 */
export function chaosConfig(o) {
  return `listen: { host: 127.0.0.1, port: ${o.port ?? 0} }
redis: { url: "${o.redisUrl}" }
metrics: { port: 0 }
log: { level: info, access: false }
scoping: studies
studies: { maxUrlLength: 900, parallelSearches: 2 }
forward: { connectTimeout: 1s, headersTimeout: 800ms, idleTimeout: 400ms, keepAliveTimeout: 1s }
${o.workers ? `workers: ${o.workers}\n` : ''}mounts:
  - path: /api
    upstream: ${o.upstreamUrl}/dicom-web
`
}

/**
 * Put the reading album's studies in Redis and create the two tokens of a run: one reading
 * CHAOS_ALBUM, one storing into CHAOS_STOW_ALBUM.
 * @param {{ sadd(key: string, ...members: string[]): Promise<unknown> }} redis
 * @param {{ create(input: { kind: 'album', album: string, perms: string, expiresIn: string }): Promise<{ token: string }> }} admin
 */
export async function seedChaos(redis, admin) {
  await redis.sadd(`tg:album:${CHAOS_ALBUM}:studies`, ...CHAOS_STUDIES)
  const read = await admin.create({ kind: 'album', album: CHAOS_ALBUM, perms: 'read', expiresIn: '1h' })
  const write = await admin.create({
    kind: 'album',
    album: CHAOS_STOW_ALBUM,
    perms: 'read,write',
    expiresIn: '1h',
  })
  return { readToken: read.token, writeToken: write.token }
}

const WEIGHTS = /** @type {const} */ ([
  ['normal', 40],
  ['reset-before-headers', 8],
  ['reset-mid-body', 12],
  ['slow', 12],
  ['silent-mid-body', 6],
  ['invalid-http', 6],
  ['invalid-mid-body', 6],
  ['close-after-headers', 10],
])
const TOTAL_WEIGHT = WEIGHTS.reduce((sum, [, w]) => sum + w, 0)

/** @param {() => number} random */
function pickBehaviour(random) {
  let r = random() * TOTAL_WEIGHT
  for (const [name, w] of WEIGHTS) {
    r -= w
    if (r < 0) return name
  }
  return 'normal'
}

/** @param {number} ms */
const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * @param {string} base the upstream's own URL (it writes it into its DICOM JSON, as Orthanc does)
 * @param {string} uid
 */
function studyRow(base, uid) {
  return {
    '0020000D': { vr: 'UI', Value: [uid] },
    '00081190': { vr: 'UR', Value: [`${base}/dicom-web/studies/${uid}`] },
  }
}

/**
 * @typedef {object} ChaosUpstream
 * @property {string} url
 * @property {boolean} chaos whether to misbehave (false: every answer normal)
 * @property {Record<string, number>} behaviours how often each behaviour was chosen
 * @property {() => Promise<void>} stop
 */

/**
 * Start the misbehaving upstream on a free loopback port.
 * @param {{ random?: () => number }} [opts]
 * @returns {Promise<ChaosUpstream>}
 */
export async function startChaosUpstream(opts = {}) {
  const random = opts.random ?? Math.random
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set()
  let stowCount = 0
  /** @type {ChaosUpstream} */
  const upstream = {
    url: '',
    chaos: true,
    behaviours: {},
    stop: async () => {},
  }
  const server = createServer((req, res) => {
    const chunks = /** @type {Buffer[]} */ ([])
    req.on('data', (c) => chunks.push(c))
    req.on('error', () => {})
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://upstream')
      /** @type {Buffer} */
      let body
      /** @type {Record<string, string>} */
      const headers = {}
      if (req.method === 'POST') {
        // A StoreInstances answer (PS3.18 §10.5.3): one instance of a new study, stored.
        stowCount++
        const study = `1.2.826.0.1.3680043.8.${process.pid}.${stowCount}`
        const sop = `${study}.1`
        body = Buffer.from(
          JSON.stringify({
            '00081199': {
              vr: 'SQ',
              Value: [
                {
                  '00081155': { vr: 'UI', Value: [sop] },
                  '00081190': {
                    vr: 'UR',
                    Value: [`${upstream.url}/dicom-web/studies/${study}/series/1/instances/${sop}`],
                  },
                },
              ],
            },
          }),
        )
        headers['content-type'] = 'application/dicom+json'
      } else if (/\/studies\/[^/]+\/instances$/.test(url.pathname)) {
        // The STOW-RS guard's instance search: the archive holds one instance of each of the
        // album's studies, and nothing yet of a new study a client is storing.
        const study = url.pathname.split('/').at(-2) ?? ''
        const rows = CHAOS_STUDIES.includes(study)
          ? [{ '00080018': { vr: 'UI', Value: [`${study}.1`] } }]
          : []
        body = Buffer.from(JSON.stringify(rows))
        headers['content-type'] = 'application/dicom+json'
      } else if (url.pathname.endsWith('/studies')) {
        // A (split) study search: a row for every UID asked for that the archive holds (the
        // album's studies); a new study a STOW is about to store is not there yet.
        const uids = (url.searchParams.get('StudyInstanceUID') ?? '')
          .split(',')
          .filter((uid) => CHAOS_STUDIES.includes(uid))
        body = Buffer.from(JSON.stringify(uids.map((uid) => studyRow(upstream.url, uid))))
        headers['content-type'] = 'application/dicom+json'
      } else if (url.pathname.endsWith('/metadata')) {
        // Metadata: small (rewritten whole) or over 64 KiB (rewritten as a stream).
        const study = url.pathname.split('/').at(-2) ?? ''
        const n = random() < 0.5 ? 3 : 900
        body = Buffer.from(JSON.stringify(Array.from({ length: n }, () => studyRow(upstream.url, study))))
        headers['content-type'] = 'application/dicom+json'
        headers['x-chaos-count'] = String(n)
      } else {
        // An instance (passed through untouched): random bytes, announced by size and digest.
        body = Buffer.alloc(Math.floor(random() * 300_000) + 1, Math.floor(random() * 256))
        headers['content-type'] = 'application/octet-stream'
        headers['x-chaos-sha256'] = createHash('sha256').update(body).digest('hex')
      }
      const chunked = random() < 0.5
      if (!chunked) headers['content-length'] = String(body.length)
      const behaviour = upstream.chaos ? pickBehaviour(random) : 'normal'
      upstream.behaviours[behaviour] = (upstream.behaviours[behaviour] ?? 0) + 1
      void answer(res, behaviour, headers, body, random)
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)))
  const address = /** @type {import('node:net').AddressInfo} */ (server.address())
  upstream.url = `http://127.0.0.1:${address.port}`
  upstream.stop = () =>
    new Promise((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
  return upstream
}

/** @param {import('node:http').ServerResponse} res */
function reset(res) {
  const socket = res.socket
  if (!socket) return
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy()
  else socket.destroy()
}

/**
 * Write the answer the way `behaviour` says.
 * @param {import('node:http').ServerResponse} res
 * @param {string} behaviour
 * @param {Record<string, string>} headers
 * @param {Buffer} body
 * @param {() => number} random
 */
async function answer(res, behaviour, headers, body, random) {
  res.on('error', () => {})
  const half = Math.max(1, Math.floor(body.length / 2))
  /** @param {Buffer} chunk */
  const write = (chunk) => new Promise((resolve) => res.write(chunk, () => resolve(undefined)))
  switch (behaviour) {
    case 'reset-before-headers':
      return reset(res)
    case 'invalid-http':
      res.socket?.end(random() < 0.5 ? 'HTTP/1.1 OK nope\r\n\r\n' : 'garbage\0\r\n\r\n')
      return
    case 'close-after-headers':
      res.writeHead(200, headers)
      res.flushHeaders()
      await later(5)
      res.socket?.end()
      return
    case 'reset-mid-body':
      res.writeHead(200, headers)
      await write(body.subarray(0, half))
      await later(5)
      return reset(res)
    case 'silent-mid-body':
      res.writeHead(200, headers)
      await write(body.subarray(0, half))
      return // until tokengate gives up (forward.idleTimeout)
    case 'invalid-mid-body':
      res.writeHead(200, headers)
      await write(body.subarray(0, half))
      // A chunk-size line that is no number (chunked), or bytes past the Content-Length.
      res.socket?.end('zz\r\nnot a chunk\r\n')
      return
    case 'slow': {
      await later(random() * 1200) // sometimes past forward.headersTimeout (800 ms)
      if (res.destroyed) return
      res.writeHead(200, headers)
      const steps = 4
      const step = Math.ceil(body.length / steps)
      for (let at = 0; at < body.length && !res.destroyed; at += step) {
        await write(body.subarray(at, at + step))
        await later(random() * 500) // sometimes past forward.idleTimeout (400 ms)
      }
      if (!res.destroyed) res.end()
      return
    }
    default:
      res.writeHead(200, headers)
      await write(body.subarray(0, half))
      res.end(body.subarray(half))
  }
}

/**
 * @typedef {object} ChaosTally
 * @property {number} requests
 * @property {number} complete200 complete answers with a whole, right body
 * @property {number} completeError complete 502 / 504 answers from tokengate
 * @property {number} cut answers whose connection closed before their framing ended
 * @property {number} failedBeforeAnswer requests that got no answer at all (the connection failed)
 * @property {number} wrong complete answers that are wrong
 * @property {string[]} violations what was wrong with them (the first 20)
 * @property {Record<string, number>} byKind
 * @property {Record<string, number>} byOutcome requests by kind and outcome
 */

/**
 * @typedef {{ gateUrl: string, readToken: string, writeToken: string, concurrency: number }} ChaosClients
 */

/**
 * A whole run against the tokengate process `pid`: warm up for half a second with a well-behaved
 * upstream (lazily opened descriptors), take its open descriptors once the warm-up's kept-alive
 * sockets are closed again as the starting level, run the clients for `seconds` with the upstream misbehaving, then (while it
 * lives) wait up to `fdTimeoutMs` for its descriptors to come back to that level.
 * @param {{ upstream: ChaosUpstream, pid: number, clients: ChaosClients, seconds: number, alive: () => boolean, fdTimeoutMs?: number }} o
 */
export async function runChaos(o) {
  const before = openFds(o.pid)
  o.upstream.chaos = false
  await runChaosClients({ ...o.clients, seconds: 0.5 })
  // The warm-up's kept-alive sockets close (forward.keepAliveTimeout); what stays open is the start.
  const start = await fdsBackTo(o.pid, before, o.fdTimeoutMs ?? 20_000)
  o.upstream.chaos = true
  const tally = await runChaosClients({ ...o.clients, seconds: o.seconds })
  o.upstream.chaos = false
  const end = o.alive() ? await fdsBackTo(o.pid, start, o.fdTimeoutMs ?? 20_000) : Number.NaN
  return { tally, fds: { start, end } }
}

/**
 * Run `concurrency` clients for `seconds` against tokengate at `gateUrl`.
 * @param {ChaosClients & { seconds: number, random?: () => number }} o
 * @returns {Promise<ChaosTally>}
 */
export async function runChaosClients(o) {
  const random = o.random ?? Math.random
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency })
  /** @type {ChaosTally} */
  const tally = {
    requests: 0,
    complete200: 0,
    completeError: 0,
    cut: 0,
    failedBeforeAnswer: 0,
    wrong: 0,
    violations: [],
    byKind: {},
    byOutcome: {},
  }
  const deadline = Date.now() + o.seconds * 1000
  const studies = CHAOS_STUDIES
  const kinds = ['metadata', 'search', 'instance', 'stow']
  const loop = async () => {
    while (Date.now() < deadline) {
      const kind = kinds[Math.floor(random() * kinds.length)] ?? 'search'
      const study = studies[Math.floor(random() * studies.length)] ?? ''
      tally.requests++
      tally.byKind[kind] = (tally.byKind[kind] ?? 0) + 1
      const path =
        kind === 'metadata'
          ? `/api/studies/${study}/metadata`
          : kind === 'search'
            ? '/api/studies'
            : kind === 'instance'
              ? `/api/studies/${study}/series/1/instances/2`
              : '/api/studies'
      const outcome = await once(o.gateUrl, agent, kind === 'stow' ? o.writeToken : o.readToken, kind, path)
      if (outcome.kind === 'violation') {
        tally.wrong++
        if (tally.violations.length < 20) tally.violations.push(`${kind} ${path}: ${outcome.why}`)
      } else {
        tally[outcome.kind]++
        const key = `${kind} ${outcome.kind}`
        tally.byOutcome[key] = (tally.byOutcome[key] ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, loop))
  agent.destroy()
  return tally
}

/**
 * @typedef {{ kind: 'complete200' | 'completeError' | 'cut' | 'failedBeforeAnswer' } | { kind: 'violation', why: string }} Outcome
 */

/**
 * @param {string} gateUrl @param {Agent} agent @param {string} token @param {string} kind @param {string} path
 * @returns {Promise<Outcome>}
 */
function once(gateUrl, agent, token, kind, path) {
  return new Promise((resolve) => {
    const stow = kind === 'stow'
    // A new study each time: the part guard admits a study the archive does not hold yet.
    stowSerial++
    const study = `1.2.826.0.1.3680043.9.${process.pid}.${stowSerial}`
    const body = stow ? stowBody(study, `${study}.1`) : undefined
    const req = request(
      `${gateUrl}${path}`,
      {
        agent,
        method: stow ? 'POST' : 'GET',
        headers: {
          authorization: `Bearer ${token}`,
          ...(stow ? { 'content-type': body?.type } : {}),
        },
      },
      (res) => {
        /** @type {Buffer[]} */
        const parts = []
        res.on('data', (c) => parts.push(c))
        res.on('error', () => {})
        res.on('close', () => {
          if (!res.complete) return resolve({ kind: 'cut' })
          const why = check(gateUrl, kind, res.statusCode ?? 0, res.headers, Buffer.concat(parts))
          if (why) return resolve({ kind: 'violation', why })
          resolve({ kind: res.statusCode === 200 ? 'complete200' : 'completeError' })
        })
      },
    )
    req.on('error', () => resolve({ kind: 'failedBeforeAnswer' }))
    req.end(body?.body)
  })
}

/**
 * Why a complete answer is wrong, or null when it is right.
 * @param {string} gateUrl @param {string} kind @param {number} status
 * @param {import('node:http').IncomingHttpHeaders} headers @param {Buffer} body
 * @returns {string | null}
 */
export function check(gateUrl, kind, status, headers, body) {
  if (status === 502 || status === 504) {
    try {
      const error = JSON.parse(body.toString('utf8')).error
      return error === 'bad_gateway' || error === 'gateway_timeout' ? null : `error body ${error}`
    } catch {
      return `${status} with a body that is not tokengate's JSON`
    }
  }
  if (status !== 200) return `status ${status}`
  if (kind === 'instance') {
    const sha = createHash('sha256').update(body).digest('hex')
    return sha === headers['x-chaos-sha256'] ? null : `${body.length} bytes that are not the upstream's`
  }
  /** @type {unknown} */
  let json
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch {
    return `a ${body.length}-byte body that is not JSON`
  }
  const text = body.toString('utf8')
  const urls = [...text.matchAll(/"(http:\/\/[^"]+)"/g)].map((m) => m[1] ?? '')
  if (urls.length === 0 || urls.some((u) => !u.startsWith(`${gateUrl}/api/`)))
    return 'URLs not rewritten to tokengate'
  if (kind === 'metadata') {
    const want = Number(headers['x-chaos-count'])
    return Array.isArray(json) && json.length === want ? null : `metadata: not ${want} elements`
  }
  if (kind === 'search') {
    return Array.isArray(json) && json.length === CHAOS_STUDIES.length
      ? null
      : `search: ${Array.isArray(json) ? json.length : 'no'} rows, not ${CHAOS_STUDIES.length}`
  }
  return json && typeof json === 'object' && '00081199' in json ? null : 'STOW answer without its sequence'
}

/**
 * Open file descriptors of a process (Linux /proc).
 * @param {number} pid
 */
export function openFds(pid) {
  return readdirSync(`/proc/${pid}/fd`).length
}

/**
 * Wait until `pid` holds at most `level` file descriptors; the count seen last.
 * @param {number} pid @param {number} level @param {number} timeoutMs
 */
export async function fdsBackTo(pid, level, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  let now = openFds(pid)
  while (now > level && Date.now() < deadline) {
    await later(100)
    now = openFds(pid)
  }
  return now
}
