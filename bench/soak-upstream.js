// The soak test's upstream: answers every request with what scope it was asked for (the album
// query parameter and tokengate's scope header), so the soak can check that no answer ever
// belongs to another album. Run: node bench/soak-upstream.js PORT
import { createServer } from 'node:http'

const port = Number(process.argv[2])
createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://upstream')
  const body = JSON.stringify({
    album: url.searchParams.getAll('album'),
    scope: req.headers['x-tokengate-scope'] ?? null,
  })
  req.resume()
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}).listen(port, '127.0.0.1')
