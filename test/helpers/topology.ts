// What every Redis topology (single node, Sentinel, Cluster) must support, as shared tests: the
// TokenStore conformance suite over connectRedis (the store alone and behind the cache), a gate
// that sees a revocation at once and survives an outage of every data node, and the token CLI.
// Usage: runTopologySuite(t, { name, section, client, kill, restart })
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { cached } from '../../src/token/cache.js'
import { makeKeys } from '../../src/token/keys.js'
import { connectRedis, type RedisClient } from '../../src/token/redis-client.js'
import { RedisTokenStore } from '../../src/token/redis-store.js'
import { StudySets } from '../../src/token/study-sets.js'
import { runTokenStoreSuite, type StoreFixture } from '../conformance/token-store.js'
import { runCliCaptured } from './cli.js'
import { admin, type GateHandle, gateConfig, startGate } from './gate.js'
import { bearer, send } from './http.js'
import { runTokengate } from './process.js'
import { startRecordingUpstream } from './upstream.js'
import { probeUntil, waitFor } from './wait.js'

export interface Topology {
  name: string
  /** The `redis` config section that names it. */
  section: Record<string, unknown>
  /** A test-side client (queues commands and reconnects) for setup and assertions. */
  client: RedisClient
  /** Stop every data node (an outage); restart() brings them back, empty. */
  kill: () => Promise<void>
  restart: () => Promise<void>
}

/** The status a gate answers for a Bearer token on /api/studies. */
export async function gateStatus(g: GateHandle, token: string): Promise<number> {
  return (await send(g.url, { path: '/api/studies', headers: bearer(token) })).status
}

/** Requests until `want` (an invalidation or a reconnection takes a moment); the last status. */
export function eventuallyStatus(g: GateHandle, token: string, want: number): Promise<number> {
  return probeUntil(
    () => gateStatus(g, token),
    (got) => got === want,
    { intervalMs: 50 },
  )
}

/**
 * A gate on `redis` with a 10-minute cache, so that only an invalidation can make it refuse a token
 * it has allowed; its recording upstream too. Both are torn down with `t`.
 */
export async function startCachingGate(t: Test, redis: Record<string, unknown>): Promise<GateHandle> {
  const upstream = await startRecordingUpstream()
  t.teardown(upstream.stop)
  const g = await startGate({
    redis,
    upstream: `${upstream.url}/dicom-web`,
    config: { cache: { ttl: '10m', negativeTtl: '10m' } },
  })
  t.teardown(g.stop)
  return g
}

/** A conformance-suite fixture: the store over its own connectRedis client (short timeouts). */
export function storeFixture(
  topo: Topology,
  wrap: (s: RedisTokenStore) => StoreFixture['store'],
): () => Promise<StoreFixture> {
  return async () => {
    const cfg = gateConfig({
      redis: { ...topo.section, commandTimeout: 500, connectTimeout: 500 },
      upstream: 'http://127.0.0.1:9/',
    })
    const client = connectRedis(cfg.redis)
    client.on('error', () => {})
    await new Promise((r) => client.once('ready', r))
    return {
      store: wrap(new RedisTokenStore(client, makeKeys('tg:'))),
      admin: admin(topo.client),
      keyPrefix: 'tg:',
      writeRaw: async (key, fields) => {
        await topo.client.hset(key, fields)
      },
      addStudies: async (album, uids) => {
        await topo.client.sadd(`tg:album:${album}:studies`, ...uids)
      },
      studySets: new StudySets(topo.client, makeKeys('tg:')),
      outage: async () => {
        await topo.kill()
        return topo.restart
      },
    }
  }
}

export function runTopologySuite(t: Test, topo: Topology): void {
  runTokenStoreSuite(
    t,
    `${topo.name}: redis store`,
    storeFixture(topo, (s) => s),
  )
  // No subscriber here: a short TTL stands in for the invalidation the app wires up.
  runTokenStoreSuite(
    t,
    `${topo.name}: cached redis store`,
    storeFixture(topo, (s) => cached(s, { max: 1000, ttl: 1, negativeTtl: 1 })),
  )

  const tokens = admin(topo.client)
  const gate = (t: Test) => startCachingGate(t, topo.section)

  t.test(`${topo.name}: a gate allows a created token and refuses it at once after revoke`, async (t) => {
    const g = await gate(t)
    const a = await tokens.create({ kind: 'album', album: 'T', perms: 'read', expiresIn: '1h' })
    t.equal(await gateStatus(g, a.token), 200, 'allowed, and now cached for 10 minutes')
    await tokens.revoke(a.id)
    t.equal(await eventuallyStatus(g, a.token, 401), 401, 'the invalidation reached the gate')
  })

  t.test(
    `${topo.name}: with every data node down, cached tokens pass and uncached get 503; back up, the cache is cleared and invalidations flow again`,
    async (t) => {
      const g = await gate(t)
      const kept = await tokens.create({ kind: 'album', album: 'T', perms: 'read', expiresIn: '1h' })
      const uncached = await tokens.create({ kind: 'album', album: 'T', perms: 'read', expiresIn: '1h' })
      t.equal(await gateStatus(g, kept.token), 200)
      await topo.kill()
      t.equal(await gateStatus(g, kept.token), 200, 'cached: still served')
      t.equal(await gateStatus(g, uncached.token), 503, 'uncached: fail closed')
      await topo.restart()
      // The nodes come back empty: once the invalidation channel is resubscribed the cache is
      // cleared, so the cached token is looked up again and refused.
      t.equal(await eventuallyStatus(g, kept.token, 401), 401, 'cache cleared on resubscription')
      // While the channel is down every lookup already goes to Redis (so the 401 may come first);
      // the resubscription, and its log line, follow.
      t.ok(
        await waitFor('the reconnect log line', () =>
          g.logs.some((l) => l.includes('invalidation channel reconnected')),
        ),
        'the reconnect is logged',
      )
      const after = await tokens.create({ kind: 'album', album: 'T', perms: 'read', expiresIn: '1h' })
      t.equal(await eventuallyStatus(g, after.token, 200), 200, 'lookups work again')
      await tokens.revoke(after.id)
      t.equal(await eventuallyStatus(g, after.token, 401), 401, 'and invalidations reach the gate again')
    },
  )

  t.test(`${topo.name}: tokengate token create, list and revoke work against it`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tokengate-topology-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const config = join(dir, 'tokengate.yaml')
    await writeFile(
      config,
      `redis: ${JSON.stringify(topo.section)}\nmounts: [{ path: /api, upstream: "http://127.0.0.1:9/dicom-web" }]\n`,
    )
    const cli = (...args: string[]) => runCliCaptured([...args, '--config', config])
    const g = await gate(t)
    const created: { id: string; token: string }[] = []
    for (const user of ['cli-1', 'cli-1', 'cli-2', 'cli-3']) {
      const res = await cli(
        'token',
        'create',
        '--kind',
        'album',
        '--album',
        'CLI',
        '--perms',
        'read',
        '--expires',
        '1d',
        '--user',
        user,
        '--json',
      )
      t.equal(res.code, 0, res.stderr)
      created.push(JSON.parse(res.stdout))
    }
    const listed = await cli('token', 'list', '--album', 'CLI', '--json')
    t.equal(listed.code, 0, listed.stderr)
    t.same(
      (JSON.parse(listed.stdout) as { items: { id: string }[] }).items.map((i) => i.id).sort(),
      created.map((c) => c.id).sort(),
      'every token listed',
    )
    const first = created[0] as { id: string; token: string }
    t.equal(await gateStatus(g, first.token), 200)
    t.equal((await cli('token', 'revoke', first.id)).code, 0)
    t.equal(await eventuallyStatus(g, first.token, 401), 401, "the CLI's revocation reached the gate")
    const revokedUser = await cli('token', 'revoke', '--user', 'cli-1', '--json')
    t.same(JSON.parse(revokedUser.stdout), { user: 'cli-1', revoked: 1 }, 'the other token of cli-1')
    const after = await cli('token', 'list', '--album', 'CLI', '--json')
    t.same(
      (JSON.parse(after.stdout) as { items: { user: string; status: string }[] }).items
        .map((i) => `${i.user}:${i.status}`)
        .sort(),
      ['cli-1:revoked', 'cli-1:revoked', 'cli-2:active', 'cli-3:active'],
    )
    // The built CLI as a process: it exits once done (no connection left open keeps it alive).
    const proc = await runTokengate(['token', 'list', '--user', 'cli-2', '--config', config])
    t.equal(proc.code, 0, proc.stderr)
    t.match(proc.stdout, created[2]?.id as string)
  })
}
