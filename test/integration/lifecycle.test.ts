// Start, stop and reload own every resource (app.ts, lifecycle.ts): a start that fails on a port
// already in use unwinds what it had opened (Redis connections, listeners) and the real process
// exits non-zero within seconds naming what failed; a reload while the invalidation channel is
// down builds a cache that does not trust what it holds until the channel is back.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { startApp } from '../../src/app.js'
import { hashSecret } from '../../src/credential/secret.js'
import { createLogger } from '../../src/log.js'
import { admin, gateConfig, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { freePort } from '../helpers/ports.js'
import { runTokengate, writeConfig } from '../helpers/process.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const dir = await mkdtemp(join(tmpdir(), 'tokengate-lifecycle-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const tokens = admin(redis.client)
const ADMIN_KEY = 'k'.repeat(40)

/** Connections Redis holds now (the test's own client included). */
async function redisClients(): Promise<number> {
  return String(await redis.client.client('LIST'))
    .split('\n')
    .filter(Boolean).length
}

/** A port held by another listener, as a crashed or second instance would hold it. */
async function occupiedPort(t: Test): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as { port: number }).port
}

/** Whether a port can be bound now (nothing of a failed start holds it). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

const quiet = () =>
  createLogger(
    'info',
    new Writable({
      write: (_c, _e, cb) => cb(),
    }),
  )

t.test('a public port in use: start fails naming the listener and closes what it opened', async (t) => {
  const baseline = await redisClients()
  const taken = await occupiedPort(t)
  const ops = await freePort()
  const config = gateConfig({
    redisUrl: redis.url,
    upstream: upstream.url,
    config: { listen: { host: '127.0.0.1', port: taken }, metrics: { port: ops } },
  })
  await t.rejects(startApp(config, { log: quiet() }), {
    name: 'StartupError',
    message: new RegExp(`listen 127\\.0\\.0\\.1:${taken}.*in use`),
  })
  await waitFor('the Redis connections to close', async () => (await redisClients()) === baseline)
  t.equal(await redisClients(), baseline, 'no Redis connection left open')
  t.ok(await bindable(ops), 'the operations port is free again')
})

t.test('an admin port in use: start fails naming admin, and the public listener is closed', async (t) => {
  const baseline = await redisClients()
  const taken = await occupiedPort(t)
  const publicPort = await freePort()
  const config = gateConfig({
    redisUrl: redis.url,
    upstream: upstream.url,
    config: {
      listen: { host: '127.0.0.1', port: publicPort },
      admin: { host: '127.0.0.1', port: taken, key: ADMIN_KEY },
    },
  })
  await t.rejects(startApp(config, { log: quiet() }), {
    name: 'StartupError',
    message: new RegExp(`admin 127\\.0\\.0\\.1:${taken}.*in use`),
  })
  t.ok(await bindable(publicPort), 'the public port is free again: nothing serves after a failed start')
  await waitFor('the Redis connections to close', async () => (await redisClients()) === baseline)
  t.equal(await redisClients(), baseline, 'no Redis connection left open')
})

for (const which of ['public', 'admin', 'public, with 2 workers'] as const) {
  t.test(
    `tokengate serve with the ${which} port in use exits non-zero within seconds, saying why`,
    async (t) => {
      const taken = await occupiedPort(t)
      const listen = which === 'admin' ? 0 : taken
      const workers = which === 'public, with 2 workers' ? 'workers: 2\n' : ''
      const adminSection =
        which === 'admin' ? `admin: { host: 127.0.0.1, port: ${taken}, key: "${ADMIN_KEY}" }\n` : ''
      const path = await writeConfig(
        dir,
        `${which.replace(/\W+/g, '-')}.yaml`,
        `listen: { host: 127.0.0.1, port: ${listen} }
redis: { url: "${redis.url}" }
metrics: { port: 0 }
${workers}${adminSection}mounts:
  - path: /api
    upstream: ${upstream.url}
`,
      )
      const run = await runTokengate(['serve', '--config', path], 20_000)
      t.equal(run.timedOut, false, 'it exited on its own (no hang, nothing left serving)')
      t.not(run.code, 0, 'non-zero exit')
      const name = which === 'admin' ? 'admin' : 'listen'
      t.match(run.stderr, new RegExp(`cannot start: ${name} 127\\.0\\.0\\.1:${taken}.*in use`))
      if (workers) t.match(run.stderr, /cannot start: worker \d+ exited \(code 1\) before listening/)
    },
  )
}

t.test('signals during start: SIGHUP is not fatal, SIGTERM stops it once started, exit 0', async (t) => {
  // Redis not there: the start waits redis.connectTimeout for it, which leaves time for signals.
  const nowhere = await freePort()
  const path = await writeConfig(
    dir,
    'signals.yaml',
    `listen: { host: 127.0.0.1, port: 0 }
redis: { url: "redis://127.0.0.1:${nowhere}", connectTimeout: 1s }
metrics: { port: 0 }
mounts:
  - path: /api
    upstream: ${upstream.url}
`,
  )
  const proc = spawn(
    process.execPath,
    [join(import.meta.dirname, '..', '..', 'bin', 'tokengate.js'), 'serve', '--config', path],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  t.teardown(() => proc.kill('SIGKILL'))
  let out = ''
  proc.stdout.on('data', (c) => (out += c))
  proc.stderr.on('data', (c) => (out += c))
  const exited = once(proc, 'exit')
  await waitFor('the start to be under way', () => out.includes('redis error'))
  proc.kill('SIGHUP')
  await waitFor('the SIGHUP to be noted', () => out.includes('SIGHUP while starting'), 5000).catch(() => {})
  t.equal(proc.exitCode, null, 'a SIGHUP during start did not end the process')
  t.equal(proc.signalCode, null)
  proc.kill('SIGTERM')
  const [code, signal] = await exited
  t.same({ code, signal }, { code: 0, signal: null }, 'stopped by its own handler, exit 0')
  t.match(
    out,
    /tokengate listening[\s\S]*SIGTERM|SIGTERM[\s\S]*tokengate listening/,
    'it finished starting, then stopped',
  )
})

t.test('a reload while the invalidation channel is down does not trust its new cache', async (t) => {
  const g = await startGate({
    redisUrl: redis.url,
    upstream: `${upstream.url}/dicom-web`,
    config: { cache: { ttl: '10m', negativeTtl: '10m' } },
  })
  t.teardown(g.stop)
  const tok = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  const status = async () => (await send(g.url, { path: '/api/studies', headers: bearer(tok.token) })).status
  t.equal(await status(), 200)

  // The channel goes down and stays down: the default user loses its channel rights, so Redis 7
  // drops the subscriber and refuses its resubscription (publishing is refused too).
  await redis.client.call('ACL', 'LOG', 'RESET')
  await redis.client.call('ACL', 'SETUSER', 'default', 'resetchannels')
  let restored = false
  const restore = async () => {
    if (!restored) await redis.client.call('ACL', 'SETUSER', 'default', 'allchannels')
    restored = true
  }
  t.teardown(restore)
  await waitFor('a refused resubscription', async () =>
    JSON.stringify(await redis.client.call('ACL', 'LOG')).includes('"channel"'),
  )

  // SIGHUP with new cache settings during the outage: a new cache is built.
  g.app.reload({ ...g.config, cache: { ...g.config.cache, ttl: 9 * 60_000 } })
  t.equal(await status(), 200, 'asked of Redis, and valid')
  // Revoked while no message can reach the gate.
  await redis.client.hset(`tg:token:${hashSecret(tok.token)}`, 'revokedAt', String(Date.now()))
  t.equal(await status(), 401, 'the new cache asks Redis while the channel is down: the revoke counts')

  // The channel comes back by itself (the subscription retries), the cache is trusted again.
  const mark = g.logs.length
  await restore()
  await waitFor('the channel to be back', () =>
    g.logs.slice(mark).some((l) => l.includes('invalidation channel reconnected')),
  )
  const fresh = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  const freshStatus = async () =>
    (await send(g.url, { path: '/api/studies', headers: bearer(fresh.token) })).status
  t.equal(await freshStatus(), 200)
  await redis.client.hset(`tg:token:${hashSecret(fresh.token)}`, 'revokedAt', String(Date.now()))
  t.equal(await freshStatus(), 200, 'trusted again: served from the cache (a revoke would be a message)')
})
