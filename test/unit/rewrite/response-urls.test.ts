// Response URLs (rewrite/response-urls.ts): tokengate's public URL for a mount — publicUrl, else
// X-Forwarded-Proto/-Host, else Host — with /link/<token> kept for link requests, and which
// upstream prefixes map onto it.
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'
import { type PublicView, planResponseUrls, publicMountUrl } from '../../../src/rewrite/response-urls.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { matchRoute } from '../../../src/route/match.js'

const routes = compileRoutes(
  configSchema.parse({
    mounts: [
      {
        path: '/api',
        upstream: 'http://pacs:8042/dicom-web/',
        upstreamAliases: ['https://pacs.internal/dicom-web'],
      },
    ],
  }),
)
const view = (rawUrl: string, over: Partial<PublicView> = {}): PublicView => ({
  rawUrl,
  host: 'gate.local:8080',
  encrypted: false,
  ...over,
})

t.test('the public URL: publicUrl first, then X-Forwarded-*, then Host and the socket', async (t) => {
  const route = matchRoute(routes, 'GET', '/api/studies')
  t.equal(
    publicMountUrl(route, view('/api/studies'), 'https://pacs.example.org/gate/'),
    'https://pacs.example.org/gate/api',
  )
  t.equal(
    publicMountUrl(
      route,
      view('/api/studies', { forwardedProto: 'https, http', forwardedHost: 'pacs.example.org, proxy' }),
      undefined,
    ),
    'https://pacs.example.org/api',
  )
  t.equal(
    publicMountUrl(route, view('/api/studies', { forwardedProto: 'gopher' }), undefined),
    'http://gate.local:8080/api',
  )
  t.equal(
    publicMountUrl(route, view('/api/studies', { encrypted: true }), undefined),
    'https://gate.local:8080/api',
  )
})

t.test('a link request keeps its /link/<token> segment as the client sent it', async (t) => {
  const url = '/api/link/tg_abc%2Ddef/studies'
  const route = matchRoute(routes, 'GET', url)
  t.equal(publicMountUrl(route, view(url), undefined), 'http://gate.local:8080/api/link/tg_abc%2Ddef')
})

t.test('the upstream, its Forwarded spellings and the aliases all map to the public URL', async (t) => {
  const route = matchRoute(routes, 'GET', '/api/studies')
  const { bases } = planResponseUrls(
    route,
    { ...view('/api/studies'), localAddress: '10.0.0.1', localPort: 8080 },
    undefined,
  )
  // The Forwarded host is tokengate's own address, never the client's Host (gate.local:8080).
  t.same(bases.map(([from]) => from).sort(), [
    'http://"10.0.0.1:8080"/dicom-web',
    'http://10.0.0.1:8080/dicom-web',
    'http://pacs:8042/dicom-web',
    'https://pacs.internal/dicom-web',
  ])
  t.ok(bases.every(([, to]) => to === 'http://gate.local:8080/api'))
  t.ok(
    bases.every(([from], i) => i === 0 || (bases[i - 1]?.[0].length ?? 0) >= from.length),
    'longest first',
  )
})
