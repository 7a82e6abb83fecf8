// A real browser viewer for tests: the OHIF viewer's built app (fetched by scripts/install-deps.sh
// into .cache/, version in package.json's config.ohifApp) served by a small static server on its
// own origin with an app-config the test writes, and Debian's headless Chromium driven by
// playwright-core (never a downloaded browser).
// Usage: const viewer = await serveOhif(() => config); const browser = await launchChromium()
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium } from 'playwright-core'
import { type LoopbackServer, listenLoopback } from './upstream.js'

export const CHROMIUM = '/usr/bin/chromium'
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The OHIF dist/ folder install-deps.sh unpacks, and whether it is there. */
export function ohifDist(): { dir: string; version: string; present: boolean } {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { config: { ohifApp: string } }
  const version = pkg.config.ohifApp
  const dir = join(ROOT, '.cache', `ohif-app-${version}`, 'dist')
  return { dir, version, present: existsSync(join(dir, 'index.html')) }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.ico': 'image/x-icon',
}

/**
 * Serve OHIF's dist/ on a loopback port: `/app-config.js` is `appConfig()` (read per request, so a
 * test can switch data sources between pages), any path that is no file is the app (SPA routes).
 */
export async function serveOhif(appConfig: () => string): Promise<LoopbackServer> {
  const { dir } = ohifDist()
  const index = await readFile(join(dir, 'index.html'))
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] as string)
    if (path === '/app-config.js') {
      res.writeHead(200, { 'content-type': TYPES['.js'] as string, 'cache-control': 'no-store' })
      res.end(appConfig())
      return
    }
    const file = normalize(join(dir, path))
    if (!file.startsWith(dir)) {
      res.writeHead(400).end()
      return
    }
    readFile(file).then(
      (body) => {
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
        res.end(body)
      },
      () => {
        res.writeHead(200, { 'content-type': TYPES['.html'] as string })
        res.end(index)
      },
    )
  })
  return listenLoopback(server)
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Debian's Chromium, headless, with a fresh profile (removed by close()). */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'tokengate-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
  })
  return {
    context,
    close: async () => {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}
