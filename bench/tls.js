// TLS and HTTP/2 rows beside the plain cache-hit row (issue 17.6): the same tokengate build and
// upstream, served plain HTTP/1.1, HTTPS/1.1 and HTTP/2, and nginx 1-worker proxy_pass over TLS +
// HTTP/2 in front of the same upstream. HTTP/1.1 rows: 100 keep-alive connections (undici Pool);
// HTTP/2 rows: a viewer-like load, one connection with 100 concurrent streams (autocannon does
// not speak HTTP/2). Figures: requests/s and the serving process's CPU per request.
// Usage: npm run build && node bench/tls.js [seconds per row, default 5]
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { Pool } from 'undici'
import { freePort, redisServerArgs } from '../scripts/lib/ports.js'
import { admin, keys } from './lib/dist.js'
import { NGINX } from './lib/nginx.js'
import { cpuMicros, processTree, startServer, waitForPort } from './lib/proc.js'

const seconds = Number(process.argv[2] ?? 5)
const dir = mkdtempSync(join(tmpdir(), 'tokengate-bench-tls-'))
/** @type {import('./lib/proc.js').Server[]} */
const servers = []
const stopAll = async () => {
  for (const s of servers.reverse()) await s.stop()
  rmSync(dir, { recursive: true, force: true })
}

// A throwaway CA and a server certificate for 127.0.0.1.
const ssl = (/** @type {string[]} */ args) =>
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
ssl(
  ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'].concat([
    '-subj',
    '/CN=bench CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]),
)
ssl(
  ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1'].concat([
    '-keyout',
    'key.pem',
    '-out',
    'cert.csr',
  ]),
)
writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
ssl(
  [
    'x509',
    '-req',
    '-in',
    'cert.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
  ].concat(['-extfile', 'ext.cnf', '-out', 'cert.pem']),
)
const ca = readFileSync(join(dir, 'ca.pem'))
const cert = join(dir, 'cert.pem')
const key = join(dir, 'key.pem')

try {
  const upstreamPort = await freePort()
  const upstream = startServer('upstream', process.execPath, [
    'bench/servers/upstream.js',
    String(upstreamPort),
  ])
  servers.push(upstream)
  await waitForPort(upstream, upstreamPort)
  const redisPort = await freePort()
  const redisServer = startServer('redis', 'redis-server', redisServerArgs(redisPort))
  servers.push(redisServer)
  await waitForPort(redisServer, redisPort)
  const redis = new Redis({ port: redisPort, host: '127.0.0.1' })
  const tokens = new admin.TokenAdmin(redis, keys.makeKeys('tg:'), {
    secretPrefix: 'tg_',
    expiredGrace: 60_000,
  })
  /** @type {string[]} */
  const secrets = []
  for (let i = 0; i < 50; i++)
    secrets.push(
      (await tokens.create({ kind: 'album', album: 'bench', perms: 'read', expiresIn: '1h' })).token,
    )
  redis.disconnect()

  /** One tokengate process; `listen` adds tls/http2. */
  const gate = async (/** @type {string} */ name, /** @type {Record<string, unknown>} */ listen) => {
    const port = await freePort()
    const file = join(dir, `${name}.json`)
    writeFileSync(
      file,
      JSON.stringify({
        listen: { host: '127.0.0.1', port, ...listen },
        redis: { url: `redis://127.0.0.1:${redisPort}` },
        mounts: [{ path: '/api', upstream: `http://127.0.0.1:${upstreamPort}/dicom-web` }],
        metrics: { enabled: false },
        log: { level: 'info' },
      }),
    )
    const server = startServer(name, process.execPath, ['dist/main.js', 'serve', '--config', file])
    servers.push(server)
    await waitForPort(server, port)
    return { port, pid: server.pid }
  }
  const rows = [
    { label: 'Bearer, cache hit, HTTP/1.1 plain', h2: false, tls: false, ...(await gate('plain', {})) },
    {
      label: 'Bearer, cache hit, HTTPS/1.1',
      h2: false,
      tls: true,
      ...(await gate('tls', { tls: { cert, key } })),
    },
    {
      label: 'Bearer, cache hit, HTTP/2 (1 conn, 100 streams)',
      h2: true,
      tls: true,
      ...(await gate('h2', { tls: { cert, key }, http2: true })),
    },
  ]
  if (NGINX) {
    const port = await freePort()
    const conf = join(dir, 'nginx.conf')
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (n) => `${n}_temp_path ${join(dir, n)};`,
    )
    writeFileSync(
      conf,
      `worker_processes 1; daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http { access_log /dev/null; ${temp.join(' ')}
  upstream backend { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${port} ssl http2; ssl_certificate ${cert}; ssl_certificate_key ${key};
    http2_max_concurrent_streams 128; keepalive_requests 10000000;
    location /api/ { proxy_pass http://backend/dicom-web/; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`,
    )
    const nginx = startServer('nginx', NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf])
    servers.push(nginx)
    await waitForPort(nginx, port)
    rows.push({ label: 'nginx proxy_pass, no auth, HTTPS/1.1', h2: false, tls: true, port, pid: nginx.pid })
    rows.push({
      label: 'nginx proxy_pass, no auth, HTTP/2 (1 conn, 100 streams)',
      h2: true,
      tls: true,
      port,
      pid: nginx.pid,
    })
  }

  const path = '/api/studies?limit=10'
  const auth = (/** @type {number} */ i) => `Bearer ${secrets[i % secrets.length]}`

  /** 100 in flight until the deadline; returns completed count and non-200 count. */
  const loadH1 = async (/** @type {string} */ origin, /** @type {number} */ until) => {
    const pool = new Pool(origin, { connections: 100, pipelining: 1, connect: { ca } })
    let done = 0
    let bad = 0
    let i = 0
    const worker = async () => {
      while (performance.now() < until) {
        const res = await pool.request({
          path,
          method: 'GET',
          headers: { authorization: auth(i++) },
        })
        await res.body.dump()
        if (res.statusCode === 200) done++
        else bad++
      }
    }
    await Promise.all(Array.from({ length: 100 }, worker))
    await pool.close()
    return { done, bad }
  }
  const loadH2 = async (/** @type {string} */ origin, /** @type {number} */ until) => {
    const session = connect(origin, { ca })
    let done = 0
    let bad = 0
    let i = 0
    const one = () =>
      /** @type {Promise<void>} */ (
        new Promise((resolve) => {
          const stream = session.request({ ':path': path, authorization: auth(i++) })
          let status = 0
          stream.on('response', (h) => {
            status = Number(h[':status'])
          })
          stream.resume()
          stream.on('error', () => {})
          stream.on('close', () => {
            if (status === 200) done++
            else bad++
            resolve()
          })
        })
      )
    const worker = async () => {
      while (performance.now() < until) await one()
    }
    await Promise.all(Array.from({ length: 100 }, worker))
    session.close()
    return { done, bad }
  }

  const out = []
  for (const row of rows) {
    const origin = `${row.tls ? 'https' : 'http'}://127.0.0.1:${row.port}`
    const run = row.h2 ? loadH2 : loadH1
    await run(origin, performance.now() + 1000) // warm-up
    const cpu0 = cpuMicros(processTree(row.pid))
    const t0 = performance.now()
    const { done, bad } = await run(origin, t0 + seconds * 1000)
    const elapsed = (performance.now() - t0) / 1000
    const cpu = cpuMicros(processTree(row.pid)) - cpu0
    out.push({
      row: row.label,
      'req/s': Math.round(done / elapsed),
      'CPU µs/req': Math.round(cpu / Math.max(1, done)),
      errors: bad,
    })
  }
  console.log(`| configuration | req/s | CPU µs/req | non-200 |\n|---|---:|---:|---:|`)
  for (const r of out) console.log(`| ${r.row} | ${r['req/s']} | ${r['CPU µs/req']} | ${r.errors} |`)
} finally {
  await stopAll()
}
