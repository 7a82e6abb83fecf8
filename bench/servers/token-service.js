// The hand-built peer's token service (nginx `auth_request` target): what an operator writes in an
// afternoon. Reads `Authorization: Bearer`, hashes it, reads the token record from the same Redis
// tokengate uses (HGETALL on every request, no cache) and answers 204 (allow) or 401.
// Usage: node bench/servers/token-service.js <port> <redis-url> <key-prefix>
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { Redis } from 'ioredis'

const [port, redisUrl, prefix] = [Number(process.argv[2]), String(process.argv[3]), String(process.argv[4])]
const redis = new Redis(redisUrl)

createServer(async (req, res) => {
  const auth = req.headers.authorization ?? ''
  const secret = auth.startsWith('Bearer ') ? auth.slice(7) : ''
  let ok = false
  if (secret) {
    const hash = createHash('sha256').update(secret).digest('hex')
    /** @type {Record<string, string>} */
    const record = await redis.hgetall(`${prefix}token:${hash}`).catch(() => ({}))
    ok =
      record.enabled === '1' &&
      (record.revokedAt ?? '0') === '0' &&
      Number(record.expiresAt ?? 0) > Date.now()
  }
  res.writeHead(ok ? 204 : 401, { 'content-length': 0 })
  res.end()
}).listen(port, '127.0.0.1')

// Exit cleanly on SIGTERM (so `node --cpu-prof` writes its profile).
process.on('SIGTERM', () => process.exit(0))
