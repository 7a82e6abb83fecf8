// A free TCP port on loopback, asked of the kernel (bind to 0, read, close). Shared by the tests,
// the demo and the benchmarks.
import { createServer } from 'node:net'

/** @returns {Promise<number>} */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * Arguments for a throw-away redis-server on loopback: no persistence, quiet.
 * @param {number} port
 * @returns {string[]}
 */
export function redisServerArgs(port) {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--loglevel',
    'warning',
  ]
}
