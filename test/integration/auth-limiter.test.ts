// The failed-auth limiter (issue 11, "What to build" 5): refused credentials are counted per client
// address (after trusted-proxy resolution) across replicas through Redis; past the threshold the
// address gets 429 with Retry-After; a valid credential is never counted; on by default.
import t, { type Test } from 'tap'
import { mintSecret } from '../../src/credential/secret.js'
import { accessLog, admin, type GateHandle, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { commandCalls, scriptCalls, startRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/redis-process.js'
import { startRecordingUpstream } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)
const upstream = await startRecordingUpstream()
t.teardown(upstream.stop)

// Every test counts 127.0.0.1: each gets its own key prefix, so their counts never meet. The
// clock stands still, so no window ends during a test.
let prefixes = 0
const frozen = Date.now()
const now = () => frozen
async function gates(t: Test, n: number, config: Record<string, unknown> = {}) {
  const keyPrefix = `l${++prefixes}:`
  const tokens = admin(redis.client, keyPrefix)
  const started: GateHandle[] = []
  for (let i = 0; i < n; i++) {
    const gate = await startGate({
      redis: { url: redis.url, keyPrefix },
      upstream: upstream.url,
      config,
      now,
    })
    t.teardown(gate.stop)
    started.push(gate)
  }
  return { gates: started, tokens }
}

/** A well-formed secret no record has: refused after a Redis lookup (`unknown`). */
const stranger = () => bearer(mintSecret('tg_'))

t.test('refusals counted on two replicas add up in Redis and cut the address on both', async (t) => {
  const {
    gates: [a, b],
    tokens,
  } = await gates(t, 2, { authLimiter: { maxFailures: 6, window: '1m' } })
  if (!a || !b) throw new Error('two gates')
  const { token } = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  for (const gate of [a, b])
    for (let i = 0; i < 3; i++)
      t.equal((await send(gate.url, { path: '/api/studies', headers: stranger() })).status, 401)
  // Neither replica alone saw 6; each learns the shared total at its next flush.
  for (const gate of [a, b]) {
    const cut = async () =>
      (await send(gate.url, { path: '/api/studies', headers: stranger() })).status === 429
    await waitFor('the address to be cut', cut, 5000)
  }
  for (const gate of [a, b]) {
    const res = await send(gate.url, { path: '/api/studies', headers: bearer(token) })
    t.equal(res.status, 429, 'a valid token from that address too: a 200 would confirm a guess')
    t.match(res.json(), { error: 'too_many_requests' })
    const retry = Number(res.headers['retry-after'])
    t.ok(retry >= 1 && retry <= 60, `Retry-After: ${retry}`)
  }
  t.equal(accessLog(a).at(-1)?.reason, 'auth_failures', 'the log says why')
  const metrics = await a.app.metrics.registry.getSingleMetricAsString('tokengate_requests_total')
  t.match(metrics, /reason="rate_limited"[^\n]* [1-9]/, 'the outcome metric counts it')
})

t.test('valid credentials and permission refusals are never counted', async (t) => {
  const {
    gates: [gate],
    tokens,
  } = await gates(t, 1, { authLimiter: { maxFailures: 3, window: '1m' } })
  if (!gate) throw new Error('a gate')
  const { token } = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  for (let i = 0; i < 30; i++) {
    t.equal((await send(gate.url, { path: '/api/studies', headers: bearer(token) })).status, 200)
    const post = await send(gate.url, {
      method: 'POST',
      path: '/api/studies',
      headers: bearer(token),
      body: 'x',
    })
    t.equal(post.status, 403)
    t.equal((await send(gate.url, { path: '/api/studies' })).status, 401, 'no credential is no guess')
  }
  // One refusal, to see a flush happen: the shared count is then that one alone.
  t.equal((await send(gate.url, { path: '/api/studies', headers: stranger() })).status, 401)
  const pattern = `l${prefixes}:authfail:*`
  await waitFor('the refusal to be flushed', async () => (await redis.client.keys(pattern)).length > 0, 5000)
  const [key] = await redis.client.keys(pattern)
  t.equal(await redis.client.get(key as string), '1', 'only the one refusal was counted')
})

t.test('on by default: thousands of refusals from one address in a minute are cut', async (t) => {
  const {
    gates: [gate],
  } = await gates(t, 1)
  if (!gate) throw new Error('a gate')
  const statuses = new Map<number, number>()
  // Malformed-checksum secrets cost no Redis lookup; they are refusals all the same.
  for (let i = 0; i < 800; i++) {
    const res = await send(gate.url, { path: '/api/studies', headers: bearer(`tg_${'x'.repeat(38)}`) })
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
  }
  t.equal(statuses.get(401), 600, 'the default threshold: 600 refusals a minute')
  t.equal(statuses.get(429), 200, 'the rest cut')
})

t.test('behind a trusted proxy, the client it names is counted, not the proxy', async (t) => {
  const {
    gates: [gate],
    tokens,
  } = await gates(t, 1, { authLimiter: { maxFailures: 3, window: '1m' }, trustedProxies: ['127.0.0.1/32'] })
  if (!gate) throw new Error('a gate')
  const { token } = await tokens.create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  for (let i = 0; i < 3; i++)
    await send(gate.url, { path: '/api/studies', headers: { ...stranger(), ...from('192.0.2.7') } })
  const cut = await send(gate.url, {
    path: '/api/studies',
    headers: { ...bearer(token), ...from('192.0.2.7') },
  })
  t.equal(cut.status, 429, 'the guessing client is cut')
  const other = await send(gate.url, {
    path: '/api/studies',
    headers: { ...bearer(token), ...from('192.0.2.8') },
  })
  t.equal(other.status, 200, 'another client behind the same proxy is not')
  t.equal(accessLog(gate).at(-1)?.remote, '192.0.2.8', 'the access log names the client')
})

t.test(
  "counts go to Redis by the script's SHA: its text once per connection, not once per address",
  async (t) => {
    const {
      gates: [gate],
    } = await gates(t, 1, { trustedProxies: ['127.0.0.1/32'] })
    if (!gate) throw new Error('a gate')
    // Malformed secrets cost no lookup: the limiter's are the only scripts run.
    const malformed = bearer(`tg_${'x'.repeat(38)}`)
    const evals = await commandCalls(redis.client, 'eval')
    const scripts = await scriptCalls(redis.client)
    for (let i = 1; i <= 30; i++) {
      const headers = { ...malformed, 'x-forwarded-for': `192.0.2.${i}` }
      t.equal((await send(gate.url, { path: '/api/studies', headers })).status, 401)
    }
    await waitFor(
      'one count per address in Redis',
      async () => (await scriptCalls(redis.client)) - scripts >= 30,
    )
    t.ok((await commandCalls(redis.client, 'eval')) - evals <= 1, 'EVAL at most once, on the first call')
  },
)
