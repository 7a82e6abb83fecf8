// Baseline: node:http in front of an undici Pool.stream(), the least a Node proxy can do per
// request (issue 5: "the best Node can do"). No auth, no header work beyond what undici requires.
// Usage: node bench/servers/undici-pass.js <port> <upstream-url>
import { createServer } from 'node:http'
import { Pool } from 'undici'

const [port, upstream] = [Number(process.argv[2]), String(process.argv[3])]
const pool = new Pool(upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 4000, bodyTimeout: 0 })

createServer((req, res) => {
  // undici refuses hop-by-hop request headers; Host comes from the pool's origin.
  const { connection, 'keep-alive': _ka, 'transfer-encoding': te, host, ...headers } = req.headers
  const hasBody = te !== undefined || Number(req.headers['content-length'] ?? 0) > 0
  pool.stream(
    { path: req.url ?? '/', method: req.method ?? 'GET', headers, body: hasBody ? req : null, opaque: res },
    ({ statusCode, headers, opaque }) => {
      const { connection, 'keep-alive': _ka, 'transfer-encoding': te, ...rest } = headers
      opaque.writeHead(statusCode, rest)
      return opaque
    },
    (err) => {
      if (err && !res.headersSent) res.writeHead(502).end()
      else if (err) res.destroy()
    },
  )
}).listen(port, '127.0.0.1')

// Exit cleanly on SIGTERM (so `node --cpu-prof` writes its profile).
process.on('SIGTERM', () => process.exit(0))
