// How the configured Redis is named in messages and logs (token/redis-client.ts): every topology
// is recognisable, and no password ever shows.
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'
import { describeRedis, redactUrl, redisConfigKey } from '../../../src/token/redis-client.js'

const redisOf = (redis: Record<string, unknown>) =>
  configSchema.parse({ redis, mounts: [{ path: '/api', upstream: 'http://127.0.0.1:9/' }] }).redis

t.test('each topology is described by what an operator configured, without passwords', async (t) => {
  const cases: [string, Record<string, unknown>, string, string][] = [
    ['single node', { url: 'redis://:s3cret@db:6380/2' }, 'redis://:<redacted>@db:6380/2', 'redis.url'],
    ['default single node', {}, 'redis://127.0.0.1:6379', 'redis.url'],
    [
      'sentinel',
      {
        sentinel: {
          name: 'mymaster',
          nodes: ['10.0.0.1:26379', '[::1]:26380'],
          password: 's3cret',
          sentinelPassword: 's3cret',
        },
      },
      'sentinel master "mymaster" via 10.0.0.1:26379, [::1]:26380',
      'redis.sentinel',
    ],
    [
      'cluster',
      { cluster: { nodes: ['10.0.0.1:7000', '10.0.0.2:7000'], password: 's3cret' } },
      'cluster 10.0.0.1:7000, 10.0.0.2:7000',
      'redis.cluster',
    ],
  ]
  for (const [name, section, described, key] of cases) {
    const cfg = redisOf(section)
    t.equal(describeRedis(cfg), described, name)
    t.notMatch(describeRedis(cfg), 's3cret', `${name}: no password`)
    t.equal(redisConfigKey(cfg), key, `${name}: the key to check`)
  }
})

t.test(
  'a password with URL-special characters, or a URL that does not parse, still loses its credentials',
  async (t) => {
    t.equal(redactUrl('redis://user:p@ss w0rd@host:6379'), 'redis://user:<redacted>@host:6379')
    t.equal(redactUrl('redis://u:pw@host:notaport/0'), 'redis://<redacted>@host:notaport/0')
  },
)
