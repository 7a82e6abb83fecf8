// tokens.checksumKey end to end: secrets minted with the key pass; a forged well-formed secret
// (the plain checksum anyone can compute) is refused as bad_checksum, without a token lookup, once
// allowUnkeyed is off; with allowUnkeyed on, secrets minted before the key still pass.
import t from 'tap'
import { TokenAdmin } from '../../src/admin/tokens.js'
import { makeKeys } from '../../src/token/keys.js'
import { accessLog, admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)
const checksumKey = 'a-checksum-key-of-at-least-32-chars!'
const keyed = new TokenAdmin(redis.client, makeKeys('tg:'), {
  secretPrefix: 'tg_',
  expiredGrace: 60_000,
  checksumKey,
})
const album = { kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' } as const
const minted = await keyed.create(album)
// Minted before the key was set: a plain checksum, like a forger's.
const older = await admin(redis.client).create(album)

t.test('with allowUnkeyed off, only keyed secrets pass; others are refused without a lookup', async (t) => {
  const gate = await startGate({
    redisUrl: redis.url,
    upstream: upstream.url,
    config: { tokens: { checksumKey, allowUnkeyed: false } },
  })
  t.teardown(gate.stop)
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(minted.token) })).status, 200)
  const forged = await send(gate.url, { path: '/api/studies', headers: bearer(older.token) })
  t.equal(forged.status, 401)
  t.match(accessLog(gate).at(-1), { reason: 'bad_checksum', cache: 'none' }, 'no token lookup was made')
})

t.test('with allowUnkeyed on (the default), secrets minted before the key still pass', async (t) => {
  const gate = await startGate({
    redisUrl: redis.url,
    upstream: upstream.url,
    config: { tokens: { checksumKey } },
  })
  t.teardown(gate.stop)
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(minted.token) })).status, 200)
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(older.token) })).status, 200)
})

t.test('a gate without the key refuses keyed secrets as malformed', async (t) => {
  const gate = await startGate({ redisUrl: redis.url, upstream: upstream.url })
  t.teardown(gate.stop)
  t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(minted.token) })).status, 401)
  t.match(accessLog(gate).at(-1), { reason: 'bad_checksum' })
})
