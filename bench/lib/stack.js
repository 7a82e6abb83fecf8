// The processes a benchmark run needs, each on a free port and pinned to the server core: the
// upstream, Redis, the Node baselines, nginx (if installed), and tokengate instances started from
// dist/ (`bin/tokengate.js serve`) with generated YAML configs. Everything is stopped at the end.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, redisServerArgs } from '../../scripts/lib/ports.js'
import { NGINX, startNginx, startNginxDecision } from './nginx.js'
import { startServer, waitForPort } from './proc.js'

const root = join(import.meta.dirname, '..', '..')

/** Thinger.io's device/bucket profile rules (issue 13), as YAML under `mounts:`. */
const IOT_MOUNT = (/** @type {string} */ upstream) => `  - path: /iot
    upstream: ${upstream}/v1
    resources:
      device:
        - { methods: [GET], path: "/devices/{id}/resources/**", action: AccessDeviceResources }
        - { methods: [GET], path: "/devices/{id}/stats", action: GetDeviceStats }
        - { methods: [GET], path: "/devices", action: ListDevices }
        - { methods: [DELETE], path: "/devices/{id}", action: DeleteDevice }
      bucket:
        - { methods: [GET], path: "/buckets/{id}/data", action: ReadBucket }
        - { methods: [POST], path: "/buckets/{id}/data", action: WriteBucket }
`
const node = process.execPath

/**
 * @typedef {import('./proc.js').Server & { url: string, port: number }} Listening
 * @typedef {{ upstream: string, redisUrl: string, cache?: string, log?: string, iot?: boolean, tls?: import('./nginx.js').Tls, http2?: boolean, workers?: number | 'auto', lastUsedInterval?: string }} GateOptions
 */

export class Stack {
  /** @param {string} dir  temporary directory for configs and nginx */
  constructor(dir) {
    this.dir = dir
    /** @type {import('./proc.js').Server[]} */
    this.servers = []
  }

  /**
   * @param {string} name
   * @param {string} command
   * @param {(port: number) => string[]} args
   * @param {{ env?: NodeJS.ProcessEnv, nodeArgs?: string[] }} [opts]
   * @returns {Promise<Listening>}
   */
  async start(name, command, args, opts = {}) {
    const port = await freePort()
    const server = startServer(name, command, args(port), opts)
    this.servers.push(server)
    await waitForPort(server, port)
    return { ...server, port, url: `http://127.0.0.1:${port}` }
  }

  upstream() {
    return this.start('upstream', node, (p) => [join(root, 'bench/servers/upstream.js'), String(p)])
  }

  redis() {
    return this.start('redis', 'redis-server', (p) => redisServerArgs(p))
  }

  /** @param {string} upstream */
  httpProxyPass(upstream) {
    return this.start('http-proxy-3', node, (p) => [
      join(root, 'bench/servers/http-proxy-pass.js'),
      String(p),
      upstream,
    ])
  }

  /** @param {string} upstream */
  undiciPass(upstream) {
    return this.start('undici', node, (p) => [
      join(root, 'bench/servers/undici-pass.js'),
      String(p),
      upstream,
    ])
  }

  /** @param {string} redisUrl */
  tokenService(redisUrl) {
    return this.start('token-service', node, (p) => [
      join(root, 'bench/servers/token-service.js'),
      String(p),
      redisUrl,
      'tg:',
    ])
  }

  /**
   * nginx: plain proxy_pass, auth_request to the token service (`authPort`), or with
   * `o.tokengatePort` the shipped examples/nginx template, auth_request to tokengate's decision
   * endpoint on that port. `o.tls` (not with the template): HTTPS, HTTP/2 and HTTP/1.1 on one port.
   * @param {string} name
   * @param {number} upstreamPort
   * @param {number} [authPort]
   * @param {{ tokengatePort?: number, tls?: import('./nginx.js').Tls }} [o]
   * @returns {Promise<Listening | null>} null when nginx is not installed
   */
  async nginx(name, upstreamPort, authPort, o = {}) {
    if (!NGINX) return null
    const port = await freePort()
    const dir = join(this.dir, name)
    const server = o.tokengatePort
      ? await startNginxDecision(name, dir, port, upstreamPort, o.tokengatePort)
      : await startNginx(name, dir, port, upstreamPort, authPort, o.tls)
    this.servers.push(server)
    return { ...server, port, url: `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}` }
  }

  /**
   * A tokengate YAML config for the benchmark (written to the temp dir); `forward` is left at its
   * defaults (the one forwarder).
   * `iot`: also an /iot mount with resource rules (issue 13), for the api-token row.
   * `tls`: serve HTTPS with that certificate, and with `http2` HTTP/2 beside HTTP/1.1 (issue 17).
   * @param {string} name
   * `workers`: the `workers:` setting (default: left out, one process).
   * @param {GateOptions} o
   */
  async tokengateConfig(name, o) {
    const port = await freePort()
    // Each instance its own operations port: several gates run side by side (a port in use is a
    // failed start).
    const metricsPort = await freePort()
    const file = join(this.dir, `${name}.yaml`)
    await mkdir(this.dir, { recursive: true })
    // cache.ttl is long so that "cache hit" stays a hit across rounds (the default 30 s safety
    // net would turn every round's first pass over 10,000 tokens into misses).
    await writeFile(
      file,
      `# generated by bench/lib/stack.js
listen: { host: 127.0.0.1, port: ${port}${o.tls ? `, tls: { cert: "${o.tls.cert}", key: "${o.tls.key}" }, http2: ${!!o.http2}` : ''} }
metrics: { host: 127.0.0.1, port: ${metricsPort} }
redis: { url: "${o.redisUrl}" }
mounts:
  - path: /api
    upstream: ${o.upstream}/dicom-web
${o.iot ? IOT_MOUNT(o.upstream) : ''}scoping: query
cache: ${o.cache ?? '{ max: 100000, ttl: 1h, negativeTtl: 5s }'}
# Off: every row's load comes from one address (127.0.0.1), and the unknown-token flood would get
# it blocked (429 for every request, valid ones included) on the shared Redis for a minute.
authLimiter: { enabled: false }
log: { level: ${o.log ?? 'info'} }
${o.lastUsedInterval ? `tokens: { lastUsedInterval: ${o.lastUsedInterval} }\n` : ''}${o.workers === undefined ? '' : `workers: ${o.workers}\n`}`,
    )
    return { file, port, scheme: o.tls ? 'https' : 'http' }
  }

  /**
   * tokengate from dist/ (or from another checkout's build, `o.root`), its JSON log to /dev/null.
   * @param {string} name
   * `cpus`: the cores it may run on (a taskset list; default the server core). `workers: auto`
   * starts one worker per core it may run on.
   * @param {GateOptions & { nodeArgs?: string[], root?: string, cpus?: string }} o
   * @returns {Promise<Listening>}
   */
  async tokengate(name, o) {
    const { file, port, scheme } = await this.tokengateConfig(name, o)
    const server = startServer(
      name,
      node,
      [...(o.nodeArgs ?? []), join(o.root ?? root, 'bin/tokengate.js'), 'serve', '--config', file],
      { cpus: o.cpus },
    )
    this.servers.push(server)
    await waitForPort(server, port)
    return { ...server, port, url: `${scheme}://127.0.0.1:${port}` }
  }

  /**
   * tokengate's forwarding alone (bench/servers/auth-off.js), same config shape.
   * @param {string} name
   * @param {{ upstream: string, redisUrl: string, nodeArgs?: string[] }} o
   * @returns {Promise<Listening>}
   */
  async authOff(name, o) {
    const { file, port } = await this.tokengateConfig(name, o)
    const server = startServer(name, node, [
      ...(o.nodeArgs ?? []),
      join(root, 'bench/servers/auth-off.js'),
      file,
    ])
    this.servers.push(server)
    await waitForPort(server, port)
    return { ...server, port, url: `http://127.0.0.1:${port}` }
  }

  /** @param {import('./proc.js').Server} server */
  async stopOne(server) {
    await server.stop()
    this.servers = this.servers.filter((s) => s.pid !== server.pid)
  }

  async stop() {
    await Promise.all(this.servers.map((s) => s.stop()))
    this.servers = []
  }
}
