// "tokengate forwarding with auth switched off": tokengate's own route match, forwarder and
// listener from dist/, without credential, lookup, decision, rewrite or access log.
// The product has no such switch on purpose; this harness exists so the benchmark can say what
// the auth check costs on top of exactly tokengate's forwarding.
// Usage: node bench/servers/auth-off.js <tokengate.yaml>
import { configLoad, createForwarder, proxyServer, routeCompile, routeMatch } from '../lib/dist.js'

const config = await configLoad.loadConfigFile(String(process.argv[2]))
const routes = routeCompile.compileRoutes(config)
const forwarder = createForwarder(config.forward)
// One patch shape per config, as the pipeline's rewrite plans it (nothing removed or added here).
const NONE = Object.freeze({})
/** @type {readonly string[]} */
const NO_NAMES = Object.freeze([])

const server = proxyServer.createProxyServer(async (req, res) => {
  try {
    const route = routeMatch.matchRoute(routes, req.method ?? 'GET', req.url ?? '/', req.headers.accept)
    const path = route.query ? `${route.upstreamPath}?${route.query}` : route.upstreamPath
    await forwarder.forward(req, res, route.target, {
      path,
      removeHeaders: NO_NAMES,
      setHeaders: NONE,
      responseHeaders: NONE,
    })
  } catch {
    if (!res.headersSent) res.writeHead(502).end()
    else res.destroy()
  }
}, config.listen)
await server.listen(config.listen.host, config.listen.port)

// Exit cleanly on SIGTERM (so `node --cpu-prof` writes its profile).
process.on('SIGTERM', () => process.exit(0))
