// Benchmark upstream: the PACS stand-in every configuration forwards to. Answers any GET with the
// same ~1 KB DICOM JSON body (a QIDO-RS study result; with `urls=` in the query, one naming this
// server's own URLs four times), `/stream/<bytes>` with that many bytes from
// one reused buffer (large downloads), and any request with a body by counting it away (an upload
// sink). As cheap as a Node server can be, so the proxies' cost stands out.
// Usage: node bench/servers/upstream.js <port>
import { createServer } from 'node:http'

const port = Number(process.argv[2])

const study = {
  '00080020': { vr: 'DA', Value: ['20240131'] },
  '00080030': { vr: 'TM', Value: ['101500'] },
  '00080050': { vr: 'SH', Value: ['ACC-0001'] },
  '00080061': { vr: 'CS', Value: ['CT', 'SR'] },
  '00080090': { vr: 'PN', Value: [{ Alphabetic: 'REFERRING^DOCTOR' }] },
  '00081190': { vr: 'UR', Value: ['http://pacs.example:8042/dicom-web/studies/1.2.826.0.1.3680043.8.498.1'] },
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'BENCH^PATIENT' }] },
  '00100020': { vr: 'LO', Value: ['PID-0001'] },
  '00100030': { vr: 'DA', Value: ['19700101'] },
  '00100040': { vr: 'CS', Value: ['O'] },
  '0020000D': { vr: 'UI', Value: ['1.2.826.0.1.3680043.8.498.1'] },
  '00200010': { vr: 'SH', Value: ['STUDY-1'] },
  '00201206': { vr: 'IS', Value: [3] },
  '00201208': { vr: 'IS', Value: [250] },
  '00081030': { vr: 'LO', Value: ['Benchmark study with a description long enough to look real'] },
}
let json = JSON.stringify([study])
// Pad to ~1 KB with a private tag, as real results carry more attributes.
json = JSON.stringify([
  { ...study, '00091010': { vr: 'LO', Value: ['x'.repeat(Math.max(0, 1024 - json.length - 40))] } },
])
const body = Buffer.from(json)
const jsonHeaders = { 'content-type': 'application/dicom+json', 'content-length': body.length }

// The same study as this upstream names it (`?urls=` in the query): its RetrieveURL and three
// BulkDataURIs start with this server's own base, as Orthanc writes them, so a proxy rewrites four
// URLs; padded to the same ~1 KB.
const own = `http://127.0.0.1:${port}/dicom-web/studies/1.2.826.0.1.3680043.8.498.1`
const withUrls = {
  ...study,
  '00081190': { vr: 'UR', Value: [own] },
  '00091011': { vr: 'OB', BulkDataURI: `${own}/bulk/00091011` },
  '00091012': { vr: 'OB', BulkDataURI: `${own}/bulk/00091012` },
  '00091013': { vr: 'OB', BulkDataURI: `${own}/bulk/00091013` },
}
const urlsJson = JSON.stringify([withUrls])
const urlsBody = Buffer.from(
  JSON.stringify([
    {
      ...withUrls,
      '00091010': { vr: 'LO', Value: ['x'.repeat(Math.max(0, 1024 - urlsJson.length - 40))] },
    },
  ]),
)
const urlsHeaders = { 'content-type': 'application/dicom+json', 'content-length': urlsBody.length }

const CHUNK = Buffer.alloc(256 * 1024, 0x5a)

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} size
 */
function stream(res, size) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
  let left = size
  const write = () => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length)
      left -= n
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void res.once('drain', write)
    }
    res.end()
  }
  write()
}

const server = createServer((req, res) => {
  const url = req.url ?? '/'
  if (req.method === 'POST' || req.method === 'PUT') {
    let bytes = 0
    req.on('data', (/** @type {Buffer} */ chunk) => {
      bytes += chunk.length
    })
    req.on('end', () => {
      const answer = JSON.stringify({ bytes })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) })
      res.end(answer)
    })
    return
  }
  const at = url.indexOf('/stream/')
  if (at !== -1) return stream(res, Number.parseInt(url.slice(at + 8), 10) || 0)
  if (url.includes('urls=')) {
    res.writeHead(200, urlsHeaders)
    res.end(urlsBody)
    return
  }
  res.writeHead(200, jsonHeaders)
  res.end(body)
})
server.keepAliveTimeout = 5000
server.listen(port, '127.0.0.1')

// Exit cleanly on SIGTERM (so `node --cpu-prof` writes its profile).
process.on('SIGTERM', () => process.exit(0))
