// The upstream patch: path + scoped query, headers removed and set (identity, upstream
// credentials, RFC 7239 Forwarded), and the response headers link requests need.
import t from 'tap'
import { type Config, configSchema } from '../../../src/config/schema.js'
import type { Decision } from '../../../src/policy/decide.js'
import { forwardedHeader, scopeLabel, strippedHeaders } from '../../../src/rewrite/identity-headers.js'
import { type ClientView, planRewrite, type RewriteConfig } from '../../../src/rewrite/patch.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { matchRoute } from '../../../src/route/match.js'

function setup(over: Record<string, unknown> = {}, mount: Record<string, unknown> = {}) {
  const config: Config = configSchema.parse({
    mounts: [
      {
        path: '/api',
        upstream: 'http://pacs/dicom-web',
        wado: 'http://pacs/wado',
        wadoNormalizeQuery: true,
        ...mount,
      },
    ],
    ...over,
  })
  const routes = compileRoutes(config)
  const cfg: RewriteConfig = {
    identityHeaders: config.identityHeaders,
    stripped: strippedHeaders(config.identityHeaders),
  }
  return { routes, cfg }
}

const albumDecision: Decision = {
  tokenId: 'tok_abc',
  user: 'owner',
  scope: { kind: 'album', album: 'A1' },
  perms: new Set(['read']),
}
const client: ClientView = { remoteAddress: '10.0.0.7', encrypted: false }

t.test('the path is the upstream path plus the scoped query', async (t) => {
  const { routes, cfg } = setup()
  const cases: [string, string][] = [
    ['/api/studies?limit=5&album=x', '/studies?limit=5&album=A1'],
    ['/api/studies', '/studies?album=A1'],
    ['/api/link/legacysecret1/studies/1.2?includefield=all', '/studies/1.2?includefield=all&album=A1'],
    [
      '/api/wado?requestType=WADO&contentType=image%2Fjpeg',
      '?requestType=WADO&contentType=image/jpeg&album=A1',
    ],
  ]
  for (const [url, path] of cases) {
    t.equal(planRewrite(matchRoute(routes, 'GET', url), albumDecision, client, cfg).path, path, url)
  }
  const user: Decision = { ...albumDecision, scope: { kind: 'user', user: 'u' } }
  t.equal(planRewrite(matchRoute(routes, 'GET', '/api/studies'), user, client, cfg).path, '/studies', 'no ?')
})

t.test('query values reach the upstream re-encoded with the fewest escapes, WADO-URI or not', async (t) => {
  const off = setup({}, { wadoNormalizeQuery: false })
  const url = '/api/wado?contentType=image%2Fjpeg'
  t.equal(
    planRewrite(matchRoute(off.routes, 'GET', url), albumDecision, client, off.cfg).path,
    '?contentType=image/jpeg&album=A1',
  )
  const on = setup()
  t.equal(
    planRewrite(
      matchRoute(on.routes, 'GET', '/api/studies?x=image%2Fjpeg&y=a%26b%2Bc'),
      albumDecision,
      client,
      on.cfg,
    ).path,
    '/studies?x=image/jpeg&y=a%26b%2Bc&album=A1',
    'separators stay escaped, the rest is decoded',
  )
  t.equal(
    planRewrite(matchRoute(on.routes, 'GET', '/api/wado?x=1%3BstudyUID%3D9'), albumDecision, client, on.cfg)
      .path,
    '?x=1%3BstudyUID%3D9&album=A1',
    'an escaped ; never becomes a separator, even where WADO values are normalised',
  )
})

t.test('identity headers are set from the decision, under the configured names in lower case', async (t) => {
  const { routes, cfg } = setup()
  const p = planRewrite(matchRoute(routes, 'GET', '/api/studies'), albumDecision, client, cfg)
  t.equal(p.setHeaders['x-tokengate-token-id'], 'tok_abc')
  t.equal(p.setHeaders['x-tokengate-user'], 'owner')
  t.equal(p.setHeaders['x-tokengate-scope'], 'album:A1')

  const custom = setup({ identityHeaders: { user: 'X-Remote-User', tokenId: 'X-Token', scope: 'X-Scope' } })
  const c = planRewrite(matchRoute(custom.routes, 'GET', '/api/studies'), albumDecision, client, custom.cfg)
  t.equal(c.setHeaders['x-remote-user'], 'owner')
  t.equal(c.setHeaders['x-token'], 'tok_abc')
  t.equal(c.setHeaders['x-scope'], 'album:A1')
  t.notOk('x-tokengate-user' in c.setHeaders, 'the default names are not used')
})

t.test(
  'an album token without a user sets no user header, but the client copy is still removed',
  async (t) => {
    const { routes, cfg } = setup()
    const p = planRewrite(
      matchRoute(routes, 'GET', '/api/studies'),
      { ...albumDecision, user: '' },
      client,
      cfg,
    )
    t.notOk('x-tokengate-user' in p.setHeaders)
    t.ok(p.removeHeaders.includes('x-tokengate-user'))
  },
)

t.test('the scope header names the scope: album:<id>, inbox or user', async (t) => {
  t.equal(scopeLabel({ kind: 'album', album: 'A1' }), 'album:A1')
  t.equal(scopeLabel({ kind: 'user-album', user: 'u', album: 'A2' }), 'album:A2')
  t.equal(scopeLabel({ kind: 'inbox', user: 'u' }), 'inbox')
  t.equal(scopeLabel({ kind: 'user', user: 'u' }), 'user')
})

t.test(
  'Authorization, Forwarded, every identity header, the default and the extra strip lists are removed',
  async (t) => {
    const { routes, cfg } = setup({
      identityHeaders: {
        user: 'X-Remote-User',
        strip: ['X_Forwarded_User', 'Remote-Groups'],
        stripDefault: [],
      },
    })
    const p = planRewrite(matchRoute(routes, 'GET', '/api/studies'), albumDecision, client, cfg)
    t.same([...p.removeHeaders].sort(), [
      'authorization',
      'forwarded',
      'remote-groups',
      'x-forwarded-user',
      'x-remote-user',
      'x-tokengate-scope',
      'x-tokengate-token-id',
    ])
    for (const name of p.removeHeaders) t.equal(name, name.toLowerCase(), `${name} is lower case`)
    t.same(
      strippedHeaders(configSchema.parse({ mounts: [{ path: '/a', upstream: 'http://u' }] }).identityHeaders),
      [
        'authorization',
        'forwarded',
        'x-tokengate-user',
        'x-tokengate-token-id',
        'x-tokengate-scope',
        'x-original-url',
        'x-rewrite-url',
        'x-original-uri',
        'x-real-ip',
        'remote-user',
        'x-remote-user',
        'x-forwarded-user',
      ],
      'the default strip list',
    )
    t.same(
      strippedHeaders({
        user: 'A',
        tokenId: 'a',
        scope: 'B',
        strip: ['b', 'AUTHORIZATION'],
        stripDefault: [],
      }),
      ['authorization', 'forwarded', 'a', 'b'],
      'names are folded and listed once',
    )
    t.same(
      strippedHeaders({ user: 'X_User', tokenId: 'a', scope: 'b', strip: [], stripDefault: ['Remote_User'] }),
      ['authorization', 'forwarded', 'x-user', 'a', 'b', 'remote-user'],
      'underscores are read as dashes',
    )
  },
)

t.test('upstream credentials are set as Basic, Bearer or a named header; none by default', async (t) => {
  const cases: [string, Record<string, unknown> | undefined, string, string | undefined][] = [
    [
      'basic',
      { basic: { user: 'tokengate', password: 'p:ss' } },
      'authorization',
      `Basic ${Buffer.from('tokengate:p:ss').toString('base64')}`,
    ],
    ['bearer', { bearer: 'upstream-secret' }, 'authorization', 'Bearer upstream-secret'],
    ['header', { header: { name: 'X-Api-Key', value: 'k123' } }, 'x-api-key', 'k123'],
    ['none', undefined, 'authorization', undefined],
  ]
  for (const [name, upstreamAuth, header, value] of cases) {
    const { routes, cfg } = setup({}, upstreamAuth ? { upstreamAuth } : {})
    const p = planRewrite(matchRoute(routes, 'GET', '/api/studies'), albumDecision, client, cfg)
    t.equal(p.setHeaders[header], value, `${name}: ${header}`)
    t.ok(p.removeHeaders.includes('authorization'), `${name}: the client's Authorization is still removed`)
  }
})

t.test('Forwarded follows RFC 7239: for, host, proto; IPv6 bracketed and quoted', async (t) => {
  const cases: [ClientView, string][] = [
    [
      { localAddress: '10.0.0.1', localPort: 80, remoteAddress: '10.0.0.7', encrypted: false },
      'for=10.0.0.7;host="10.0.0.1:80";proto=http',
    ],
    [
      { localAddress: '10.0.0.1', localPort: 8443, remoteAddress: '10.0.0.7', encrypted: true },
      'for=10.0.0.7;host="10.0.0.1:8443";proto=https',
    ],
    [
      { localAddress: '::1', localPort: 8080, remoteAddress: '::1', encrypted: false },
      'for="[::1]";host="[::1]:8080";proto=http',
    ],
    [
      { localAddress: '::ffff:10.0.0.1', localPort: 8080, remoteAddress: '10.0.0.7', encrypted: false },
      'for=10.0.0.7;host="10.0.0.1:8080";proto=http',
    ],
    [{ remoteAddress: undefined, encrypted: true }, 'proto=https'],
  ]
  for (const [view, want] of cases) t.equal(forwardedHeader(view), want, want)
  t.equal(
    forwardedHeader(cases[0]![0], 'https://pacs.example.org/gate'),
    'for=10.0.0.7;host=pacs.example.org;proto=https',
    'publicUrl names the host and scheme',
  )

  const { routes, cfg } = setup()
  const p = planRewrite(matchRoute(routes, 'GET', '/api/studies'), albumDecision, cases[2]![0], cfg)
  t.equal(p.setHeaders.forwarded, 'for="[::1]";host="[::1]:8080";proto=http', 'the patch sets it')
  t.equal(p.setHeaders['x-forwarded-host'], '[::1]:8080')
  t.equal(p.setHeaders['x-forwarded-for'], '::1')
  t.equal(p.setHeaders['x-forwarded-proto'], 'http')
  t.equal(p.setHeaders['x-forwarded-port'], '8080')
})

t.test(
  'a trusted proxy’s X-Forwarded-For and -Proto are appended to; headers leaking the secret are removed',
  async (t) => {
    const { routes, cfg } = setup()
    const view: ClientView = {
      remoteAddress: '192.0.2.9',
      peerAddress: '10.0.0.2',
      forwardedFor: '192.0.2.9',
      forwardedProto: 'https',
      encrypted: false,
      leakedHeaders: ['Referer', 'x_leak'],
    }
    const p = planRewrite(matchRoute(routes, 'GET', '/api/studies'), albumDecision, view, cfg)
    t.equal(p.setHeaders['x-forwarded-for'], '192.0.2.9,10.0.0.2')
    t.equal(p.setHeaders['x-forwarded-proto'], 'https,http')
    t.match(p.setHeaders.forwarded, /^for=192\.0\.2\.9;/)
    t.ok(p.removeHeaders.includes('referer') && p.removeHeaders.includes('x-leak'), 'leaking headers removed')
    t.notOk(cfg.stripped.includes('referer'), 'the per-config list is left alone')
  },
)

t.test(
  'link responses get Referrer-Policy no-referrer and Cache-Control private, no-store; others none',
  async (t) => {
    const { routes, cfg } = setup()
    const link = planRewrite(
      matchRoute(routes, 'GET', '/api/link/legacysecret1/studies'),
      albumDecision,
      client,
      cfg,
    )
    t.same(link.responseHeaders, { 'referrer-policy': 'no-referrer', 'cache-control': 'private, no-store' })
    const plain = planRewrite(matchRoute(routes, 'GET', '/api/studies'), albumDecision, client, cfg)
    t.same(plain.responseHeaders, {})
  },
)

t.test('the patch never carries the link secret', async (t) => {
  const { routes, cfg } = setup()
  const p = planRewrite(
    matchRoute(routes, 'GET', '/api/link/legacysecret1/studies?x=1'),
    albumDecision,
    client,
    cfg,
  )
  t.notMatch(JSON.stringify(p), 'legacysecret1')
})
