// Baseline: a bare http-proxy-3 pass-through with the agent settings and proxy options of
// tokengate's former http-proxy engine (removed, bench/README.md "Why one forwarder"): the floor
// of a proxy built on http-proxy-3, no auth.
// Usage: node bench/servers/http-proxy-pass.js <port> <upstream-url>
import { Agent, createServer } from 'node:http'
import { createProxyServer } from 'http-proxy-3'

const [port, upstream] = [Number(process.argv[2]), String(process.argv[3])]
const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: 4000, scheduling: 'lifo' })
const proxy = createProxyServer({ xfwd: true, changeOrigin: true, toProxy: true, prependPath: true })
const target = new URL(upstream)

createServer((req, res) => {
  proxy.web(req, res, { target, agent }, () => {
    if (!res.headersSent) res.writeHead(502)
    res.end()
  })
}).listen(port, '127.0.0.1')

// Exit cleanly on SIGTERM (so `node --cpu-prof` writes its profile).
process.on('SIGTERM', () => process.exit(0))
