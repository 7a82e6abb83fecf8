// Who the client is (server/client-address.ts): the TCP peer unless it is a trusted proxy, then
// the nearest untrusted hop it names; and the failed-auth limiter's key (IPv6 by /64).
import t from 'tap'
import { limiterKey } from '../../../src/server/auth-limiter.js'
import { parseCidr, resolveClient, trustedProxies } from '../../../src/server/client-address.js'

const proxies = trustedProxies(['10.0.0.0/8', 'fd00::/8', '192.0.2.1'])

t.test('with no trusted proxies, nothing a client writes is believed', async (t) => {
  const c = resolveClient('203.0.113.5', { 'x-forwarded-for': '1.1.1.1', 'x-forwarded-host': 'evil' }, null)
  t.same(c, { address: '203.0.113.5', peer: '203.0.113.5' })
  t.same(
    resolveClient('203.0.113.5', { 'x-forwarded-for': '1.1.1.1' }, proxies),
    {
      address: '203.0.113.5',
      peer: '203.0.113.5',
    },
    'a peer outside the list is not believed either',
  )
})

t.test('from a trusted proxy: the rightmost hop that is not itself trusted', async (t) => {
  const cases: [string, Record<string, string>, string][] = [
    ['10.1.1.1', { 'x-forwarded-for': '198.51.100.7' }, '198.51.100.7'],
    ['10.1.1.1', { 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 10.2.2.2' }, '198.51.100.7'],
    ['::ffff:10.1.1.1', { 'x-forwarded-for': '198.51.100.7' }, '198.51.100.7'],
    ['10.1.1.1', { 'x-forwarded-for': 'garbage, 198.51.100.7' }, '198.51.100.7'],
    ['10.1.1.1', { 'x-forwarded-for': '198.51.100.7, garbage' }, '10.1.1.1'],
    ['10.1.1.1', { forwarded: 'for=198.51.100.9;proto=https, for="[2001:db8::1]:4711"' }, '2001:db8::1'],
    ['10.1.1.1', { forwarded: 'for=198.51.100.9:80' }, '198.51.100.9'],
    ['192.0.2.1', {}, '192.0.2.1'],
    ['fd00::5', { 'x-forwarded-for': '2001:db8::9' }, '2001:db8::9'],
  ]
  for (const [peer, headers, want] of cases)
    t.equal(resolveClient(peer, headers, proxies).address, want, `${peer} ${JSON.stringify(headers)}`)
  const c = resolveClient(
    '10.1.1.1',
    { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'pacs.example' },
    proxies,
  )
  t.equal(c.forwardedProto, 'https')
  t.equal(c.forwardedHost, 'pacs.example')
  t.equal(c.peer, '10.1.1.1')
})

t.test('CIDR blocks are checked: bad addresses and prefix lengths are refused', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' })
  t.same(parseCidr('::1'), { address: '::1', prefix: 128, family: 'ipv6' })
  for (const bad of ['10.0.0.0/33', 'fd00::/129', 'host.example', '10.0.0.0/', '10.0.0.0/8x'])
    t.throws(() => parseCidr(bad), bad)
})

t.test('the limiter counts IPv4 addresses alone and IPv6 clients by their /64', async (t) => {
  t.equal(limiterKey('198.51.100.7'), '198.51.100.7')
  t.equal(limiterKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  t.equal(limiterKey('2001:0db8:0001:0002:ffff:0:0:9'), '2001:db8:1:2::/64')
  t.equal(limiterKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(limiterKey('::1'), '0:0:0:0::/64')
})
