// Policy decision: validity at the injected `now`, permission, then scope. Records are plain
// objects, routes come from the real matcher, and album membership is a fake `{ isAlbumMember }`.
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'
import { BadRequest, Forbidden, type GateError, InvalidToken, OutOfScope } from '../../../src/errors.js'
import { type Decision, decide, type ScopeRequest } from '../../../src/policy/decide.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { type Action, matchRoute, type RouteMatch } from '../../../src/route/match.js'
import type { TokenRecord } from '../../../src/token/record.js'

const NOW = 1_700_000_000_000
const routes = compileRoutes(
  configSchema.parse({ mounts: [{ path: '/api', upstream: 'http://pacs/dicom-web' }] }),
)
const route = (method: string, url: string, accept?: string): RouteMatch =>
  matchRoute(routes, method, url, accept)
const READ = route('GET', '/api/studies')
const WRITE = route('POST', '/api/studies')
const APPROPRIATE = route('PUT', '/api/studies/1.2.3')
const ZIP = route('GET', '/api/studies/1.2.3', 'application/zip')

function record(over: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: 'tok_album1',
    kind: 'album',
    user: 'owner',
    album: 'A1',
    perms: new Set<Action>(['read']),
    expiresAt: NOW + 60_000,
    createdAt: NOW - 60_000,
    enabled: true,
    revokedAt: 0,
    description: '',
    tenant: '',
    attrs: {},
    userActive: true,
    userValidUntil: 0,
    lastUsedAt: 0,
    ...over,
  }
}
const userToken = (over: Partial<TokenRecord> = {}) =>
  record({
    id: 'tok_user1',
    kind: 'user',
    user: 'alice',
    album: '',
    perms: new Set<Action>(['read']),
    ...over,
  })

/** A fake membership source: alice belongs to A1 and A2. Records every question it was asked. */
function members() {
  const asked: [string, string][] = []
  const table = new Map([['alice', new Set(['A1', 'A2'])]])
  return {
    asked,
    async isAlbumMember(user: string, album: string) {
      asked.push([user, album])
      return table.get(user)?.has(album) ?? false
    },
  }
}

const none: ScopeRequest = { albums: [], inbox: false }
const albums = (...a: string[]): ScopeRequest => ({ albums: a, inbox: false })
const inbox: ScopeRequest = { albums: [], inbox: true }

/** decide() throws at once when it needs no store, and rejects when it asked one: either counts. */
async function refusal(run: () => Decision | Promise<Decision>): Promise<GateError> {
  try {
    await run()
  } catch (err) {
    return err as GateError
  }
  throw new Error('expected a refusal')
}

interface Refused {
  name: string
  record: TokenRecord | null
  route?: RouteMatch
  requested?: ScopeRequest
  now?: number
  cls: new (...args: never[]) => GateError
  reason: string
}

const refusals: Refused[] = [
  {
    name: 'an unknown token (no record) is InvalidToken unknown',
    record: null,
    cls: InvalidToken,
    reason: 'unknown',
  },
  {
    name: 'a token whose expiry is in the past is InvalidToken expired',
    record: record({ expiresAt: NOW - 1 }),
    cls: InvalidToken,
    reason: 'expired',
  },
  {
    name: 'a token expiring exactly at now is already expired',
    record: record({ expiresAt: NOW }),
    cls: InvalidToken,
    reason: 'expired',
  },
  {
    name: 'a token valid now is expired when now is injected past its expiry',
    record: record(),
    now: NOW + 60_000,
    cls: InvalidToken,
    reason: 'expired',
  },
  {
    name: 'a revoked token is InvalidToken revoked',
    record: record({ revokedAt: NOW - 5 }),
    cls: InvalidToken,
    reason: 'revoked',
  },
  {
    name: 'a disabled token is InvalidToken disabled',
    record: record({ enabled: false }),
    cls: InvalidToken,
    reason: 'disabled',
  },
  {
    name: 'a revoked user token is InvalidToken revoked before any membership question',
    record: userToken({ revokedAt: 1 }),
    requested: albums('A1'),
    cls: InvalidToken,
    reason: 'revoked',
  },
  {
    name: 'an invalid token is refused as invalid even when it also lacks the permission',
    record: record({ enabled: false }),
    route: WRITE,
    cls: InvalidToken,
    reason: 'disabled',
  },
  {
    name: 'a read-only album token asking to write (STOW) is Forbidden missing_perm',
    record: record(),
    route: WRITE,
    cls: Forbidden,
    reason: 'missing_perm',
  },
  {
    name: 'an album token without appropriate asking PUT /studies/{uid} is Forbidden missing_perm',
    record: record({ perms: new Set<Action>(['read', 'write', 'download']) }),
    route: APPROPRIATE,
    cls: Forbidden,
    reason: 'missing_perm',
  },
  {
    name: 'an album token with read but not download asking a zip is Forbidden missing_perm',
    record: record(),
    route: ZIP,
    cls: Forbidden,
    reason: 'missing_perm',
  },
  {
    name: 'an album token with download but not read asking a zip is Forbidden missing_perm',
    record: record({ perms: new Set<Action>(['download']) }),
    route: ZIP,
    cls: Forbidden,
    reason: 'missing_perm',
  },
  {
    name: 'an album token asking for the inbox is Forbidden inbox_refused',
    record: record(),
    requested: inbox,
    cls: Forbidden,
    reason: 'inbox_refused',
  },
  {
    name: 'an album token asking another album is OutOfScope album_not_allowed',
    record: record(),
    requested: albums('A2'),
    cls: OutOfScope,
    reason: 'album_not_allowed',
  },
  {
    name: 'an album token asking its own album and another is OutOfScope album_not_allowed',
    record: record(),
    requested: albums('A1', 'A2'),
    cls: OutOfScope,
    reason: 'album_not_allowed',
  },
  {
    name: 'a user token asking an album its user is not in is OutOfScope not_album_member',
    record: userToken(),
    requested: albums('B9'),
    cls: OutOfScope,
    reason: 'not_album_member',
  },
  {
    name: 'a user token asking two albums is BadRequest conflicting_scope',
    record: userToken(),
    requested: albums('A1', 'A2'),
    cls: BadRequest,
    reason: 'conflicting_scope',
  },
  {
    name: 'a user token asking an album and the inbox is BadRequest conflicting_scope',
    record: userToken(),
    requested: { albums: ['A1'], inbox: true },
    cls: BadRequest,
    reason: 'conflicting_scope',
  },
]

for (const c of refusals) {
  t.test(c.name, async (t) => {
    const err = await refusal(() =>
      decide(c.record, c.route ?? READ, c.requested ?? none, c.now ?? NOW, members()),
    )
    t.type(err, c.cls)
    t.equal(err.reason, c.reason)
  })
}

t.test(
  'unknown, expired, revoked and disabled refusals carry the token id only as log detail, never a secret',
  async (t) => {
    const err = await refusal(() => decide(record({ enabled: false }), READ, none, NOW, members()))
    t.equal(err.message, 'tok_album1')
    const unknown = await refusal(() => decide(null, READ, none, NOW, members()))
    t.equal(unknown.message, 'unknown')
  },
)

t.test(
  'a token of a deactivated user is InvalidToken user_inactive, album and user tokens alike',
  async (t) => {
    for (const r of [record({ userActive: false }), userToken({ userActive: false })]) {
      const err = await refusal(() => decide(r, READ, none, NOW, members()))
      t.type(err, InvalidToken)
      t.equal(err.reason, 'user_inactive')
    }
  },
)

t.test(
  'a token of a user whose validUntil has come is refused; one millisecond before, allowed',
  async (t) => {
    const err = await refusal(() => decide(userToken({ userValidUntil: NOW }), READ, none, NOW, members()))
    t.equal(err.reason, 'user_inactive')
    const d = await decide(userToken({ userValidUntil: NOW + 1 }), READ, none, NOW, members())
    t.equal(d.tokenId, 'tok_user1')
  },
)

t.test('a token valid one millisecond past now is allowed', async (t) => {
  const d = await decide(record({ expiresAt: NOW + 1 }), READ, none, NOW, members())
  t.equal(d.tokenId, 'tok_album1')
})

t.test('an album token is pinned to its album, asked for or not', async (t) => {
  for (const requested of [none, albums('A1')]) {
    const d = await decide(record(), READ, requested, NOW, members())
    t.same(d.scope, { kind: 'album', album: 'A1' }, `albums ${JSON.stringify(requested.albums)}`)
    t.equal(d.user, 'owner')
    t.same([...d.perms], ['read'], 'its own permissions, no more')
  }
})

t.test(
  'an album token with the route permission is allowed: write, appropriate, and a zip with download',
  async (t) => {
    const perms = new Set<Action>(['read', 'write', 'download', 'appropriate'])
    for (const r of [WRITE, APPROPRIATE, ZIP]) {
      const d = await decide(record({ perms }), r, none, NOW, members())
      t.equal(d.scope.kind, 'album', `${r.action}${r.download ? ' + download' : ''}`)
    }
  },
)

t.test('an album token never asks the membership store', async (t) => {
  const m = members()
  await decide(record(), READ, albums('A1'), NOW, m)
  await refusal(() => decide(record(), READ, albums('A2'), NOW, m))
  t.same(m.asked, [])
})

t.test('a user token asking an album its user belongs to gets the user-album scope', async (t) => {
  const m = members()
  const d = await decide(userToken(), READ, albums('A2'), NOW, m)
  t.same(d.scope, { kind: 'user-album', user: 'alice', album: 'A2' })
  t.equal(d.tokenId, 'tok_user1')
  t.same(m.asked, [['alice', 'A2']], 'membership asked once, for that user and album')
})

t.test('a user token asking the inbox gets the inbox scope without a membership question', async (t) => {
  const m = members()
  const d = await decide(userToken(), READ, inbox, NOW, m)
  t.same(d.scope, { kind: 'inbox', user: 'alice' })
  t.same(m.asked, [])
})

t.test(
  'a user token asking neither album nor inbox gets the user scope with all four permissions',
  async (t) => {
    const d = await decide(userToken(), WRITE, none, NOW, members())
    t.same(d.scope, { kind: 'user', user: 'alice' })
    t.same([...d.perms].sort(), ['appropriate', 'download', 'read', 'write'])
    t.equal(d.user, 'alice')
  },
)

t.test('a user token is allowed a zip download and a write whatever perms its record lists', async (t) => {
  for (const r of [ZIP, WRITE, APPROPRIATE]) {
    const d = await decide(userToken({ perms: new Set<Action>() }), r, none, NOW, members())
    t.equal(d.scope.kind, 'user', r.action)
  }
})

t.test('a failing membership store fails the decision (no fallback to allow)', async (t) => {
  const boom = new Error('store down')
  const failing = {
    async isAlbumMember(): Promise<boolean> {
      throw boom
    },
  }
  await t.rejects(async () => decide(userToken(), READ, albums('A1'), NOW, failing), boom)
})
