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
const client: ClientView = { host: 'gate.example', remoteAddress: '10.0.0.7', encrypted: false }

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

t.test('Authorization, Forwarded, every identity header and the extra strip list are removed', async (t) => {
  const { routes, cfg } = setup({
    identityHeaders: { user: 'X-Remote-User', strip: ['X-Forwarded-User', 'Remote-Groups'] },
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
    ['authorization', 'forwarded', 'x-tokengate-user', 'x-tokengate-token-id', 'x-tokengate-scope'],
  )
  t.same(
    strippedHeaders({ user: 'A', tokenId: 'a', scope: 'B', strip: ['b', 'AUTHORIZATION'] }),
    ['authorization', 'forwarded', 'a', 'b'],
    'names are folded and listed once',
  )
})

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
      { host: 'gate.example', remoteAddress: '10.0.0.7', encrypted: false },
      'for=10.0.0.7;host=gate.example;proto=http',
    ],
    [
      { host: 'gate.example:8443', remoteAddress: '10.0.0.7', encrypted: true },
      'for=10.0.0.7;host="gate.example:8443";proto=https',
    ],
    [
      { host: 'gate.example', remoteAddress: '::1', encrypted: false },
      'for="[::1]";host=gate.example;proto=http',
    ],
    [
      { host: '[2001:db8::1]:8080', remoteAddress: '2001:db8::7', encrypted: false },
      'for="[2001:db8::7]";host="[2001:db8::1]:8080";proto=http',
    ],
    [{ host: 'a"b\\c', remoteAddress: undefined, encrypted: false }, 'host="a\\"b\\\\c";proto=http'],
    [{ host: undefined, remoteAddress: undefined, encrypted: true }, 'proto=https'],
  ]
  for (const [view, want] of cases) t.equal(forwardedHeader(view), want, want)

  const { routes, cfg } = setup()
  const p = planRewrite(matchRoute(routes, 'GET', '/api/studies'), albumDecision, cases[2]![0], cfg)
  t.equal(p.setHeaders.forwarded, 'for="[::1]";host=gate.example;proto=http', 'the patch sets it')
})

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
