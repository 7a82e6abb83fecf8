// tokengate's own modules as built in dist/ (what `tokengate serve` runs), typed from src/. The
// benchmark measures the built code, never the TypeScript through a loader. `npm run bench`
// builds dist/ first.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dist = new URL('../../dist/', import.meta.url)
if (!existsSync(fileURLToPath(new URL('main.js', dist)))) {
  console.error('bench: dist/ is missing; run `npm run build` (npm run bench does it)')
  process.exit(1)
}

/** @param {string} path */
const load = (path) => import(new URL(path, dist).href)

/** @type {typeof import('../../src/admin/tokens.js')} */
export const admin = await load('admin/tokens.js')
/** @type {typeof import('../../src/token/keys.js')} */
export const keys = await load('token/keys.js')
/** @type {typeof import('../../src/credential/secret.js')} */
export const secret = await load('credential/secret.js')
/** @type {typeof import('../../src/config/load.js')} */
export const configLoad = await load('config/load.js')
/** @type {typeof import('../../src/route/compile.js')} */
export const routeCompile = await load('route/compile.js')
/** @type {typeof import('../../src/route/match.js')} */
export const routeMatch = await load('route/match.js')
/** tokengate's one forwarder. @type {typeof import('../../src/forward/undici-forwarder.js')} */
const forwarderModule = await load('forward/undici-forwarder.js')
export const createForwarder = forwarderModule.createForwarder
/** @type {typeof import('../../src/server/proxy-server.js')} */
export const proxyServer = await load('server/proxy-server.js')
