// Which request targets tokengate answers itself (server/local-endpoints.ts): the token endpoint
// and `<mount>/tokens[/…]` exactly, with or without a query, and nothing that merely starts alike,
// so no proxied path is ever taken from a mount.
import t from 'tap'
import type { TokenAdmin } from '../../../src/admin/tokens.js'
import { configSchema } from '../../../src/config/schema.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { localEndpoints } from '../../../src/server/local-endpoints.js'

function endpoints(extra: Record<string, unknown>) {
  const config = configSchema.parse({
    mounts: [
      { path: '/api', upstream: 'http://127.0.0.1:9/dicom-web' },
      { path: '/iot', upstream: 'http://127.0.0.1:9/v1' },
    ],
    ...extra,
  })
  return localEndpoints(config, compileRoutes(config), {
    admin: {} as TokenAdmin,
    store: { lookup: async () => null, isAlbumMember: async () => false },
    secrets: { prefix: 'tg_', allowLegacy: true },
    now: Date.now,
  })
}

t.test('the token endpoint is its path exactly, query allowed; nothing else', async (t) => {
  const local = endpoints({})
  for (const url of ['/oauth/token', '/oauth/token?x=1']) t.ok(local.match(url), url)
  for (const url of [
    '/oauth/tokens',
    '/oauth/token/',
    '/oauth',
    '/api/tokens',
    '/api/studies',
    '/oauth/tokenx?y',
  ])
    t.equal(local.match(url), null, url)
  t.equal(endpoints({ oauth: { enabled: false } }).match('/oauth/token'), null, 'off when disabled')
  t.ok(endpoints({ oauth: { tokenPath: '/auth/v1/token' } }).match('/auth/v1/token'), 'configurable path')
})

t.test(
  'self-service is <mount>/tokens and below, only when enabled, only on the mounts listed',
  async (t) => {
    t.equal(endpoints({}).match('/api/tokens'), null, 'off by default')
    const all = endpoints({ selfService: { enabled: true } })
    for (const url of ['/api/tokens', '/api/tokens?x', '/api/tokens/tok_a/revoke', '/iot/tokens'])
      t.ok(all.match(url), url)
    for (const url of ['/api/tokensx', '/api/link/tg_x/tokens', '/apitokens', '/tokens'])
      t.equal(all.match(url), null, url)
    const some = endpoints({ selfService: { enabled: true, mounts: ['/api'] } })
    t.ok(some.match('/api/tokens'))
    t.equal(some.match('/iot/tokens'), null, 'a mount not listed keeps its /tokens path')
  },
)
