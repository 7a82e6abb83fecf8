// The forwarder's header and path planning: hop-by-hop headers (RFC 7230 §6.1) dropped both
// ways, the patch applied (names compared with `_` read as `-`), Host the target's, and the
// target's base path joined the way http-proxy-3 joins it.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import t from 'tap'
import {
  clientResponseHeaders,
  upstreamPath,
  upstreamRequestHeaders,
} from '../../../src/forward/upstream-headers.js'
import type { UpstreamPatch } from '../../../src/rewrite/patch.js'

const patch: UpstreamPatch = {
  path: '/studies',
  removeHeaders: ['authorization', 'x-tokengate-user'],
  setHeaders: { 'x-tokengate-user': 'alice', forwarded: 'for=1.2.3.4;proto=http' },
  responseHeaders: { 'cache-control': 'private, no-store' },
}

function clientRequest(headers: IncomingHttpHeaders, encrypted = false): IncomingMessage {
  return { headers, socket: { remoteAddress: '1.2.3.4', encrypted } } as unknown as IncomingMessage
}

function asPairs(flat: string[]): [string, string][] {
  const pairs: [string, string][] = []
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i] as string, flat[i + 1] as string])
  return pairs
}

t.test('request: hop-by-hop and Connection-listed headers stay behind, end-to-end ones go', async (t) => {
  const out = asPairs(
    upstreamRequestHeaders(
      clientRequest({
        host: 'gate.example:8443',
        connection: 'keep-alive, X-Private',
        'x-private': 'hop',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        trailer: 'x-sum',
        'transfer-encoding': 'chunked',
        upgrade: 'websocket',
        expect: '100-continue',
        accept: 'application/dicom+json',
        'set-cookie': ['a=1', 'b=2'],
      }),
      new URL('http://pacs:8042/dicom-web'),
      patch,
    ),
  )
  const names = out.map(([n]) => n)
  for (const hop of [
    'connection',
    'x-private',
    'keep-alive',
    'proxy-connection',
    'te',
    'trailer',
    'transfer-encoding',
    'upgrade',
    'expect',
  ])
    t.notOk(names.includes(hop), `${hop} is not forwarded`)
  t.same(
    out.filter(([n]) => n === 'accept' || n === 'set-cookie'),
    [
      ['accept', 'application/dicom+json'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ],
    'end-to-end headers pass, repeated ones as repeated headers',
  )
})

t.test(
  'request: the patch removes and sets; Host is the target; the client’s X-Forwarded-* stay behind',
  async (t) => {
    const out = asPairs(
      upstreamRequestHeaders(
        clientRequest(
          {
            host: 'gate.example',
            authorization: 'Bearer secret',
            'x-tokengate-user': 'mallory',
            'x-forwarded-for': '10.0.0.1',
            'x-forwarded-host': 'evil.example',
            'x-forwarded-prefix': '/admin',
            x_forwarded_host: 'evil.example',
          },
          true,
        ),
        new URL('http://pacs:8042/dicom-web'),
        patch,
      ),
    )
    t.same(Object.fromEntries(out), {
      'x-tokengate-user': 'alice',
      forwarded: 'for=1.2.3.4;proto=http',
      host: 'pacs:8042',
    })
    t.equal(out.filter(([n]) => n === 'x-tokengate-user').length, 1, 'a set header is sent once')
  },
)

t.test('request: removals match names with underscores read as dashes', async (t) => {
  const out = asPairs(
    upstreamRequestHeaders(
      clientRequest({ x_tokengate_user: 'mallory', 'x-tokengate_user': 'mallory', x_other: 'kept' }),
      new URL('http://pacs:8042/dicom-web'),
      patch,
    ),
  )
  t.same(
    out.filter(([n]) => n !== 'host' && n !== 'forwarded'),
    [
      ['x_other', 'kept'],
      ['x-tokengate-user', 'alice'],
    ],
  )
})

t.test('response: hop-by-hop headers dropped, the patch’s response headers win', async (t) => {
  const out = clientResponseHeaders(
    {
      connection: 'keep-alive, x-upstream-hop',
      'keep-alive': 'timeout=1',
      'x-upstream-hop': '1',
      'transfer-encoding': 'chunked',
      'cache-control': 'max-age=3600',
      'content-type': 'application/dicom+json',
      'set-cookie': ['a=1', 'b=2'],
    },
    patch.responseHeaders,
  )
  t.same(out, [
    'content-type',
    'application/dicom+json',
    'set-cookie',
    ['a=1', 'b=2'],
    'cache-control',
    'private, no-store',
  ])
})

t.test('the upstream path joins the target base path as http-proxy-3 does', async (t) => {
  const cases: [string, string, string][] = [
    ['http://pacs/dicom-web', '/studies?limit=1', '/dicom-web/studies?limit=1'],
    ['http://pacs/dicom-web/', '/studies', '/dicom-web/studies'],
    ['http://pacs', '/studies', '/studies'],
    ['http://pacs/wado', '', '/wado'],
    ['http://pacs/wado', '?requestType=WADO', '/wado?requestType=WADO'],
    ['http://pacs/api?tenant=t1', '/studies?limit=1', '/api/studies?tenant=t1&limit=1'],
    ['http://pacs/api?tenant=t1', '/studies', '/api/studies?tenant=t1'],
  ]
  for (const [target, path, want] of cases)
    t.equal(upstreamPath(new URL(target), path), want, `${target} + ${path}`)
})
