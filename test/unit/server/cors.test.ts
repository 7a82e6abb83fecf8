// CORS per mount (server/cors.ts) on a bare HTTP server: which origins are granted, what a
// preflight answers (and that it ends the request), which headers a real request gets, and that a
// mount without `cors` or a request without `Origin` is left alone.
import { createServer } from 'node:http'
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { allowHeaders, applyCors, PREFLIGHT_ANSWERED } from '../../../src/server/cors.js'
import { send } from '../../helpers/http.js'
import { listenLoopback } from '../../helpers/upstream.js'

const VIEWER = 'https://viewer.example.org'
const routes = compileRoutes(
  configSchema.parse({
    mounts: [
      { path: '/api', upstream: 'http://127.0.0.1:1/dicom-web', cors: { origins: [VIEWER], maxAge: 120 } },
      {
        path: '/open',
        upstream: 'http://127.0.0.1:1/dicom-web',
        rules: [{ methods: ['GET'], path: '/**', action: 'read' }],
        cors: { origins: ['*'] },
      },
      {
        path: '/cred',
        upstream: 'http://127.0.0.1:1/dicom-web',
        cors: { origins: [VIEWER], credentials: true },
      },
      { path: '/plain', upstream: 'http://127.0.0.1:1/dicom-web' },
    ],
  }),
)

let stagesRun = 0
const server = await listenLoopback(
  createServer((req, res) => {
    const cors = applyCors(routes, req, res)
    if (cors === PREFLIGHT_ANSWERED) return
    stagesRun++
    res.writeHead(req.url?.includes('refuse') ? 401 : 200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ returned: cors }))
  }),
)
t.teardown(server.stop)

const preflight = (path: string, origin: string, method = 'GET', headers = 'authorization') =>
  send(server.url, {
    method: 'OPTIONS',
    path,
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': headers,
    },
  })

t.test('a preflight from a listed origin is granted and answered without running the stages', async (t) => {
  const before = stagesRun
  const res = await preflight('/api/studies', VIEWER, 'GET', 'authorization, accept')
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-origin'], VIEWER)
  t.match(res.headers['access-control-allow-methods'], /\bGET\b/)
  t.match(res.headers['access-control-allow-methods'], /\bPOST\b/, 'STOW is a rule of the DICOMweb defaults')
  t.equal(res.headers['access-control-allow-headers'], 'Authorization, Content-Type, Accept')
  t.equal(res.headers['access-control-max-age'], '120')
  t.equal(res.headers.vary, 'Origin')
  t.equal(res.headers['access-control-allow-credentials'], undefined, 'credentials are off by default')
  t.equal(res.text, '')
  t.equal(stagesRun, before, 'no stage ran for the preflight')
})

t.test('a preflight from another origin gets no grant, and is still not passed on', async (t) => {
  const before = stagesRun
  const res = await preflight('/api/studies', 'https://evil.example.com')
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-origin'], undefined)
  t.equal(res.headers['access-control-allow-methods'], undefined)
  t.equal(res.headers['access-control-allow-headers'], undefined)
  t.equal(res.headers.vary, 'Origin')
  t.equal(stagesRun, before)
})

t.test('origins compare as browsers send them, so a look-alike origin is not granted', async (t) => {
  for (const origin of ['https://viewer.example.org.evil.com', 'http://viewer.example.org', 'null']) {
    const res = await preflight('/api/studies', origin)
    t.equal(res.headers['access-control-allow-origin'], undefined, origin)
  }
})

t.test('a preflight for a method no rule of the mount accepts gets no method grant', async (t) => {
  const res = await preflight('/open/x', 'https://anywhere.example', 'DELETE')
  t.equal(res.status, 204)
  t.equal(res.headers['access-control-allow-methods'], undefined)
  const ok = await preflight('/open/x', 'https://anywhere.example', 'GET')
  t.equal(ok.headers['access-control-allow-methods'], 'GET')
})

t.test('"*" grants any origin as "*" and needs no Vary', async (t) => {
  const res = await preflight('/open/x', 'https://anywhere.example')
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.equal(res.headers.vary, undefined)
  t.equal(res.headers['access-control-max-age'], '600', 'maxAge defaults to 600 s')
})

t.test('credentials: true adds Allow-Credentials with the echoed origin', async (t) => {
  const res = await preflight('/cred/studies', VIEWER)
  t.equal(res.headers['access-control-allow-origin'], VIEWER)
  t.equal(res.headers['access-control-allow-credentials'], 'true')
  const real = await send(server.url, { path: '/cred/studies', headers: { origin: VIEWER } })
  t.equal(real.headers['access-control-allow-credentials'], 'true')
})

t.test('a real request from a listed origin gets the headers, on an error answer too', async (t) => {
  for (const path of ['/api/studies', '/api/refuse']) {
    const res = await send(server.url, { path, headers: { origin: VIEWER } })
    t.equal(res.headers['access-control-allow-origin'], VIEWER, path)
    t.equal(
      res.headers['access-control-expose-headers'],
      'Content-Type, Content-Length, Content-Location, Warning, X-Request-Id',
    )
    t.equal(res.headers.vary, 'Origin')
    t.equal(res.headers['access-control-allow-methods'], undefined, 'method grants belong to preflights')
    t.same((res.json() as { returned: unknown }).returned, {
      'access-control-allow-origin': VIEWER,
      'access-control-expose-headers':
        'Content-Type, Content-Length, Content-Location, Warning, X-Request-Id',
    })
  }
  t.equal((await send(server.url, { path: '/api/refuse', headers: { origin: VIEWER } })).status, 401)
})

t.test('an OPTIONS without Access-Control-Request-Method is no preflight: the stages run', async (t) => {
  const before = stagesRun
  const res = await send(server.url, { method: 'OPTIONS', path: '/api/studies', headers: { origin: VIEWER } })
  t.equal(res.status, 200)
  t.equal(stagesRun, before + 1)
})

t.test('a mount without cors, a request without Origin, or no mount at all is left alone', async (t) => {
  for (const [path, headers] of [
    ['/plain/studies', { origin: VIEWER }],
    ['/api/studies', {}],
    ['/nowhere', { origin: VIEWER }],
  ] as const) {
    const res = await send(server.url, { path, headers })
    t.equal(res.headers['access-control-allow-origin'], undefined, path)
    t.equal(res.headers.vary, undefined, path)
    t.equal((res.json() as { returned: unknown }).returned, null)
  }
  const pre = await preflight('/plain/studies', VIEWER)
  t.equal(pre.status, 200, 'a preflight to a mount without cors goes to the stages (which refuse it)')
})

t.test('requested headers are granted only among the safe ones', async (t) => {
  t.equal(allowHeaders(undefined), 'Authorization, Content-Type, Accept')
  t.equal(
    allowHeaders('Authorization, X-Requested-With, X-Tokengate-User, cookie, Range'),
    'Authorization, Content-Type, Accept, x-requested-with, range',
  )
})
