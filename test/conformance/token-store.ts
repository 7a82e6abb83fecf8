// The behaviour every TokenStore must have (the Redis store, and the cache decorator over it), in
// the manner of oauth2-proxy's RunSessionStoreTests: a new store or decorator is accepted when it
// passes this suite against real Redis. `seed` writes through the admin operations, as the CLI
// does, so the suite also pins the record layout the store reads.
import type { Test } from 'tap'
import type { TokenAdmin } from '../../src/admin/tokens.js'
import { hashSecret } from '../../src/credential/secret.js'
import { StoreUnavailable } from '../../src/errors.js'
import type { TokenStore } from '../../src/token/store.js'
import type { StudySets } from '../../src/token/study-sets.js'
import { probeUntil, waitFor } from '../helpers/wait.js'

/**
 * How long a change may take to reach a cache decorator (a message on another socket): far less
 * than any TTL. On timeout the assertion that follows fails with its own message.
 */
const SOON = { timeoutMs: 1000 }

export interface StoreFixture {
  store: TokenStore
  admin: TokenAdmin
  /** Write a raw Redis hash (for malformed-record cases). */
  writeRaw(key: string, fields: Record<string, string>): Promise<void>
  /** Add studies to an album's study set. */
  addStudies(album: string, uids: string[]): Promise<void>
  /** The study-set writes the CLI and STOW recording use, on the store's Redis. */
  studySets: StudySets
  /** Make the store's Redis unreachable; returns a function that brings it back. */
  outage(): Promise<() => Promise<void>>
  keyPrefix: string
}

export function runTokenStoreSuite(t: Test, name: string, make: () => Promise<StoreFixture>): void {
  t.test(`${name}: the TokenStore contract`, async (t) => {
    const f = await make()
    t.teardown(() => f.store.close())

    t.test(
      'a created token is found by the hash of its secret, with the fields the gate reads',
      async (t) => {
        const created = await f.admin.create({
          kind: 'album',
          album: 'A1',
          user: 'owner',
          perms: 'read,download',
          expiresIn: '1h',
          description: 'for the viewer',
        })
        const record = await f.store.lookup(hashSecret(created.token))
        t.ok(record)
        t.equal(record?.id, created.id)
        t.equal(record?.kind, 'album')
        t.equal(record?.album, 'A1')
        t.equal(record?.user, 'owner')
        t.same([...(record?.perms ?? [])].sort(), ['download', 'read'])
        t.equal(record?.expiresAt, Date.parse(created.expiresAt))
        t.equal(record?.enabled, true)
        t.equal(record?.revokedAt, 0)
        // The operator's fields are not read on the request path (less for Redis and Lua to copy).
        t.equal(record?.description, '', 'the description is not read')
        t.equal(record?.createdAt, 0, 'nor the creation time')
      },
    )

    t.test("a lookup carries the token's user status and validity, from the user record", async (t) => {
      const none = await f.admin.create({ kind: 'user', user: 'no-record', expiresIn: '1h' })
      t.match(await f.store.lookup(hashSecret(none.token)), { userActive: true, userValidUntil: 0 })
      await f.admin.users.add('rec-user', { validUntil: '2099-01-01' })
      const tok = await f.admin.create({ kind: 'user', user: 'rec-user', expiresIn: '1h' })
      t.match(await f.store.lookup(hashSecret(tok.token)), {
        userActive: true,
        userValidUntil: Date.UTC(2099, 0, 1),
      })
      await f.admin.users.deactivate('rec-user')
      // A cache decorator sees it once its invalidation arrives: wait for that, bounded.
      const record = await probeUntil(
        () => f.store.lookup(hashSecret(tok.token)),
        (r) => r?.userActive === false,
        { intervalMs: 5 },
      )
      t.equal(record?.userActive, false, 'deactivated')
    })

    t.test('an unknown hash is null, not an error', async (t) => {
      t.equal(await f.store.lookup(hashSecret('tg_never_issued')), null)
    })

    t.test('lookups asked together each get their own record (batched on a single node)', async (t) => {
      await f.admin.users.add('batch-active', {})
      await f.admin.users.add('batch-gone', {})
      const made = await Promise.all([
        f.admin.create({ kind: 'album', album: 'B1', user: 'batch-active', perms: 'read', expiresIn: '1h' }),
        f.admin.create({ kind: 'album', album: 'B2', perms: 'read,write', expiresIn: '2h' }),
        f.admin.create({ kind: 'user', user: 'batch-gone', expiresIn: '1h' }),
        f.admin.create({ kind: 'user', user: 'batch-no-record', expiresIn: '1h' }),
        f.admin.create({ kind: 'api', user: 'batch-active', grants: 'device:d1:read', expiresIn: '1h' }),
      ])
      await f.admin.users.deactivate('batch-gone')
      const hashes = [...made.map((m) => hashSecret(m.token)), hashSecret('tg_batch_unknown')]
      const alone = []
      for (const h of hashes) alone.push(await f.store.lookup(h))
      // 150 lookups in one turn: more than one batch, every hash several times, in a mixed order.
      const order = Array.from({ length: 150 }, (_, i) => (i * 7) % hashes.length)
      const together = await Promise.all(
        order.map((i) => f.store.lookup(hashes[i] as (typeof hashes)[number])),
      )
      for (let k = 0; k < order.length; k++) t.same(together[k], alone[order[k] as number])
      t.equal(alone[5], null, 'the unknown hash is null')
      t.same(
        alone.slice(0, 5).map((r) => [r?.id, r?.userActive, r?.album]),
        [
          [made[0].id, true, 'B1'],
          [made[1].id, true, 'B2'],
          [made[2].id, false, ''],
          [made[3].id, true, ''],
          [made[4].id, true, ''],
        ],
        'each its own record and its own user',
      )
      t.same(alone[4]?.grants?.length, 1, 'the api token has its grant')
    })

    t.test('a malformed record fails closed: it reads as unknown', async (t) => {
      const hash = hashSecret('legacy-malformed-token')
      await f.writeRaw(`${f.keyPrefix}token:${hash}`, { id: 'tok_x', kind: 'album', perms: 'read' }) // no album, no expiry
      t.equal(await f.store.lookup(hash), null)
      const badKind = hashSecret('legacy-bad-kind-token')
      await f.writeRaw(`${f.keyPrefix}token:${badKind}`, {
        id: 'tok_y',
        kind: 'admin',
        user: 'u',
        expiresAt: '9999999999999',
      })
      t.equal(await f.store.lookup(badKind), null)
    })

    t.test('revoked and disabled records are returned as such (the policy refuses them)', async (t) => {
      const a = await f.admin.create({ kind: 'user', user: 'bob', expiresIn: '1h' })
      const b = await f.admin.create({ kind: 'user', user: 'bob', expiresIn: '1h' })
      await f.admin.revoke(a.id)
      await f.admin.disable(b.id)
      // A cache decorator hears of the change on another socket: allow it a moment (not a TTL).
      await waitFor(
        'the revoke to be seen',
        async () => (await f.store.lookup(hashSecret(a.token)))?.revokedAt,
        SOON,
      ).catch(() => {})
      await waitFor(
        'the disable to be seen',
        async () => !(await f.store.lookup(hashSecret(b.token)))?.enabled,
        SOON,
      ).catch(() => {})
      t.ok(((await f.store.lookup(hashSecret(a.token)))?.revokedAt ?? 0) > 0, 'revoked')
      t.equal((await f.store.lookup(hashSecret(b.token)))?.enabled, false, 'disabled')
    })

    t.test('album membership is per user and album', async (t) => {
      await f.admin.addMember('A7', 'carol')
      t.equal(await f.store.isAlbumMember('carol', 'A7'), true)
      t.equal(await f.store.isAlbumMember('carol', 'A8'), false)
      t.equal(await f.store.isAlbumMember('dave', 'A7'), false)
    })

    t.test("an album's studies are its study set; an unknown album has none", async (t) => {
      await f.addStudies('S1', ['1.2.3', '1.2.4'])
      t.same([...(await f.store.albumStudies('S1'))].sort(), ['1.2.3', '1.2.4'])
      t.equal((await f.store.albumStudies('S-none')).size, 0)
    })

    t.test("a user's inbox is its own study set, apart from every album", async (t) => {
      await f.studySets.add({ kind: 'inbox', user: 'frank' }, ['1.2.10', '1.2.11'])
      await f.studySets.add({ kind: 'album', album: 'frank' }, ['1.2.99'])
      t.same([...(await f.store.inboxStudies('frank'))].sort(), ['1.2.10', '1.2.11'])
      t.equal((await f.store.inboxStudies('nobody')).size, 0)
      t.notOk(
        (await f.store.albumStudies('frank')).has('1.2.10'),
        'an album named like the user is another set',
      )
    })

    t.test("a user's albums are those it was made a member of, and only while it is", async (t) => {
      await f.admin.addMember('G1', 'grace')
      await f.admin.addMember('G2', 'grace')
      t.same([...(await f.store.userAlbums('grace'))].sort(), ['G1', 'G2'])
      t.same([...(await f.store.userAlbums('nobody'))], [])
      await f.admin.removeMember('G1', 'grace')
      await waitFor(
        'the removal to be seen',
        async () => (await f.store.userAlbums('grace')).length === 1,
        SOON,
      ).catch(() => {})
      t.same([...(await f.store.userAlbums('grace'))], ['G2'])
    })

    t.test('studies removed from a set are gone from what the store answers', async (t) => {
      const ref = { kind: 'album', album: 'S2' } as const
      t.equal(await f.studySets.add(ref, ['1.2.20', '1.2.21', '1.2.22']), 3)
      t.equal(await f.studySets.add(ref, ['1.2.20']), 0, 'adding again changes nothing')
      t.equal((await f.store.albumStudies('S2')).size, 3)
      t.equal(await f.studySets.remove(ref, ['1.2.21', '1.2.404']), 1)
      await waitFor(
        'the removal to be seen',
        async () => (await f.store.albumStudies('S2')).size === 2,
        SOON,
      ).catch(() => {})
      t.same([...(await f.store.albumStudies('S2'))].sort(), ['1.2.20', '1.2.22'])
    })

    t.test('ping resolves while Redis answers', async (t) => {
      await t.resolves(f.store.ping())
    })

    t.test(
      'with Redis down, lookups of uncached tokens fail with StoreUnavailable, and recover',
      async (t) => {
        const created = await f.admin.create({ kind: 'user', user: 'erin', expiresIn: '1h' })
        const restore = await f.outage()
        await t.rejects(f.store.lookup(hashSecret(created.token)), StoreUnavailable)
        await t.rejects(f.store.isAlbumMember('erin', 'never-asked'), StoreUnavailable)
        await t.rejects(f.store.albumStudies('never-asked'), StoreUnavailable)
        await t.rejects(f.store.inboxStudies('never-asked'), StoreUnavailable)
        await t.rejects(f.store.userAlbums('never-asked'), StoreUnavailable)
        await t.rejects(f.store.ping(), StoreUnavailable)
        await restore()
        // The test Redis keeps nothing on disk: write the record again, then wait for the reconnect.
        const again = await f.admin.create({ kind: 'user', user: 'erin', expiresIn: '1h' })
        const record = await waitFor(
          'the store to reconnect',
          () => f.store.lookup(hashSecret(again.token)).catch(() => null),
          { timeoutMs: 5000, intervalMs: 50 },
        ).catch(() => null)
        t.equal(record?.id, again.id, 'lookups work again once Redis is back, with no restart')
      },
    )
  })
}
