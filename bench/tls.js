// The TLS and HTTP/2 rows of the benchmark alone (issue 17.6), beside the plain rows: tokengate's
// cache hit, nginx proxy_pass and nginx auth_request + token service, each over HTTP/1.1,
// HTTPS/1.1 and HTTP/2 (one connection, 100 concurrent streams) in front of the same upstream. A shorthand for bench/run.js with those rows (they are in every
// `npm run bench`); further options are passed on (`node bench/run.js --help`).
// Usage: npm run build && node bench/tls.js [seconds per run, default 5] [run.js options]
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

const [first, ...rest] = process.argv.slice(2)
const seconds = first && /^\d+(\.\d+)?$/.test(first) ? ['--duration', first] : []
const more = seconds.length ? rest : process.argv.slice(2)
const rows = '^(hit|nginx-proxy|nginx-auth)$|-(tls|h2)$'
const { status } = spawnSync(
  process.execPath,
  [
    join(import.meta.dirname, 'run.js'),
    '--only',
    rows,
    '--skip',
    'latency,transfer,revocation',
    ...seconds,
    ...more,
  ],
  { stdio: 'inherit' },
)
process.exit(status ?? 1)
