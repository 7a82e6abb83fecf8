// A bare HTTP server that answers every request with a small body after: nothing (`plain`), one
// Redis PING (`ping`), or one tokengate token lookup (`lookup`, RedisTokenStore from dist/, the
// Bearer secret's hash). bench/round-trip.js compares them: what one Redis round trip per request
// costs a Node server, apart from everything else tokengate does.
// Usage: node bench/servers/round-trip.js <port> <plain|ping|lookup> <redis-url>
import { createServer } from 'node:http'
import { Redis } from 'ioredis'
import { hashSecret } from '../../dist/credential/secret.js'
import { makeKeys } from '../../dist/token/keys.js'
import { RedisTokenStore } from '../../dist/token/redis-store.js'

const [port, mode, redisUrl] = [Number(process.argv[2]), String(process.argv[3]), String(process.argv[4])]
const redis = new Redis(redisUrl, { enableAutoPipelining: true, commandTimeout: 2000 })
redis.on('error', () => {})
const store = new RedisTokenStore(redis, makeKeys('tg:'))
const BODY = Buffer.from('{"ok":true}')

/** @type {(req: import('node:http').IncomingMessage) => Promise<unknown> | null} */
const work =
  mode === 'ping'
    ? () => redis.ping()
    : mode === 'lookup'
      ? (req) => store.lookup(hashSecret((req.headers.authorization ?? '').slice(7)))
      : () => null

createServer((req, res) => {
  const answer = () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length })
    res.end(BODY)
  }
  const pending = work(req)
  if (pending) pending.then(answer, () => res.writeHead(503).end())
  else answer()
}).listen(port, '127.0.0.1')

process.on('SIGTERM', () => process.exit(0))
