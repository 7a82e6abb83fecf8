// Response URL rewriting through the real forwarder (scoping: query), against a small upstream
// that writes its own URLs into DICOM JSON: RetrieveURL/BulkDataURI point at tokengate (publicUrl,
// else X-Forwarded-*, else Host); a small body (Content-Length ≤ 64 KiB) is rewritten whole and
// sent with its new Content-Length, a chunked or large one is streamed chunked; the ETag of a
// rewritten body is dropped; an answer with nothing to rewrite keeps its bytes and headers; the
// upstream is asked for no compression, and anything else — other content types, a compressed
// body — passes byte for byte with its own headers.
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { admin, startGate } from '../helpers/gate.js'
import { bearer, send } from '../helpers/http.js'
import { startRedis } from '../helpers/redis.js'
import { listenLoopback } from '../helpers/upstream.js'

const redis = await startRedis()
t.teardown(redis.stop)

let base = ''
const seen: IncomingHttpHeaders[] = []
const metadata = () =>
  JSON.stringify([
    {
      '00081190': { vr: 'UR', Value: [`${base}/dicom-web/studies/1.2`] },
      '7FE00010': {
        vr: 'OB',
        BulkDataURI: `${base}/dicom-web/studies/1.2/series/3/instances/4/bulk/7fe00010`,
      },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: `${base}/dicom-web/not-a-url-field` }] },
    },
  ])
const upstream = createServer((req, res) => {
  seen.push(req.headers)
  const path = (req.url ?? '').split('?')[0] as string
  const body = Buffer.from(metadata())
  if (path.endsWith('/gzipped/metadata')) {
    const gz = gzipSync(body)
    res.writeHead(200, {
      'content-type': 'application/dicom+json',
      'content-encoding': 'gzip',
      'content-length': gz.length,
    })
    res.end(gz)
  } else if (path.endsWith('/chunked/metadata') || path.endsWith('/large/metadata')) {
    // No Content-Length (chunked), or one over 64 KiB: the streaming rewriter's case.
    const padded = path.endsWith('/large/metadata')
      ? Buffer.from(
          `${metadata().slice(0, -1)},${JSON.stringify({ '00091010': { vr: 'LO', Value: ['x'.repeat(300_000)] } })}]`,
        )
      : body
    res.writeHead(200, {
      'content-type': 'application/dicom+json',
      ...(padded === body ? {} : { 'content-length': padded.length }),
    })
    res.write(padded.subarray(0, 100))
    res.end(padded.subarray(100))
  } else if (path.endsWith('/foreign/metadata')) {
    // URLs of another server: nothing to rewrite.
    const foreign = Buffer.from(metadata().replaceAll(base, 'http://elsewhere.example'))
    res.writeHead(200, {
      'content-type': 'application/dicom+json',
      'content-length': foreign.length,
      etag: '"f1"',
    })
    res.end(foreign)
  } else if (path.endsWith('/text/metadata')) {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, etag: '"t1"' })
    res.end(body)
  } else {
    res.writeHead(200, {
      'content-type': 'application/dicom+json',
      'content-length': body.length,
      etag: '"m1"',
    })
    res.end(body)
  }
})
const listening = await listenLoopback(upstream)
t.teardown(listening.stop)
base = listening.url

const gate = await startGate({ redisUrl: redis.url, upstream: `${base}/dicom-web` })
t.teardown(gate.stop)
const token = (
  await admin(redis.client).create({ kind: 'album', album: 'A', perms: 'read', expiresIn: '1h' })
).token

t.test(
  'a DICOM JSON answer has its URLs rewritten, and no Content-Length or ETag of the old body',
  async (t) => {
    const res = await send(gate.url, {
      path: '/api/studies/1.2/metadata',
      headers: { ...bearer(token), 'accept-encoding': 'gzip, br' },
    })
    t.equal(res.status, 200)
    const want = metadata()
      .replace(`"${base}/dicom-web/studies/1.2"`, `"${gate.url}/api/studies/1.2"`)
      .replace(`"${base}/dicom-web/studies/1.2/series`, `"${gate.url}/api/studies/1.2/series`)
    t.equal(res.text, want)
    t.equal(res.headers['content-length'], String(Buffer.byteLength(want)), 'small: rewritten whole')
    t.equal(res.headers.etag, undefined)
    t.equal(res.headers['transfer-encoding'], undefined)
    t.equal(seen.at(-1)?.['accept-encoding'], undefined, 'the upstream was asked for a plain body')
  },
)

t.test('a chunked or large DICOM JSON answer is rewritten as a stream', async (t) => {
  for (const kind of ['chunked', 'large']) {
    const res = await send(gate.url, { path: `/api/studies/1.2/${kind}/metadata`, headers: bearer(token) })
    t.equal(res.status, 200, kind)
    t.match(res.text, `"${gate.url}/api/studies/1.2"`, kind)
    t.notMatch(res.text, `"${base}/dicom-web/studies/1.2"`, kind)
    t.equal(res.headers['content-length'], undefined, kind)
    t.equal(res.headers['transfer-encoding'], 'chunked', kind)
    if (kind === 'large') t.ok(res.text.length > 300_000, 'the whole large body arrived')
  }
})

t.test('an answer with no URL of the upstream keeps its bytes and headers', async (t) => {
  const res = await send(gate.url, { path: '/api/studies/1.2/foreign/metadata', headers: bearer(token) })
  t.equal(res.text, metadata().replaceAll(base, 'http://elsewhere.example'))
  t.equal(res.headers.etag, '"f1"')
  t.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)))
})

t.test('publicUrl wins; without it a trusted proxy’s X-Forwarded-Proto and -Host are used', async (t) => {
  const forwarded = { ...bearer(token), 'x-forwarded-proto': 'https', 'x-forwarded-host': 'pacs.example.org' }
  const untrusted = await send(gate.url, { path: '/api/studies/1.2/metadata', headers: forwarded })
  t.notMatch(untrusted.text, 'pacs.example.org', 'nobody’s X-Forwarded-* are believed by default')
  t.match(untrusted.text, `"http://127.0.0.1:${gate.port}/api/studies/1.2"`, 'the Host the client addressed')
  const trusting = await startGate({
    redisUrl: redis.url,
    upstream: `${base}/dicom-web`,
    config: { trustedProxies: ['127.0.0.0/8'] },
  })
  t.teardown(trusting.stop)
  const res = await send(trusting.url, { path: '/api/studies/1.2/metadata', headers: forwarded })
  t.match(res.text, '"https://pacs.example.org/api/studies/1.2"')
  const other = await startGate({
    redisUrl: redis.url,
    upstream: `${base}/dicom-web`,
    config: { publicUrl: 'https://public.example/gate' },
  })
  t.teardown(other.stop)
  const viaPublic = await send(other.url, {
    path: '/api/studies/1.2/metadata',
    headers: { ...bearer(token), 'x-forwarded-host': 'ignored.example' },
  })
  t.match(viaPublic.text, '"https://public.example/gate/api/studies/1.2"')
})

t.test('other content types and compressed bodies pass byte for byte with their headers', async (t) => {
  const text = await send(gate.url, { path: '/api/studies/1.2/text/metadata', headers: bearer(token) })
  t.equal(text.text, metadata())
  t.equal(text.headers['content-length'], String(Buffer.byteLength(metadata())))
  t.equal(text.headers.etag, '"t1"')
  const gz = await send(gate.url, { path: '/api/studies/1.2/gzipped/metadata', headers: bearer(token) })
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.same(gz.body, gzipSync(Buffer.from(metadata())))
})

t.test('a mount with rewriteResponseUrls: false passes the answer as the upstream sent it', async (t) => {
  const plain = await startGate({
    redisUrl: redis.url,
    upstream: `${base}/dicom-web`,
    mount: { rewriteResponseUrls: false },
  })
  t.teardown(plain.stop)
  const res = await send(plain.url, { path: '/api/studies/1.2/metadata', headers: bearer(token) })
  t.equal(res.text, metadata())
  t.equal(res.headers.etag, '"m1"')
})
