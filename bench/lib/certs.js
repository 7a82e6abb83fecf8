// A throwaway certificate for the TLS and HTTP/2 rows, made with the openssl CLI at bench time:
// self-signed, EC P-256 (fast to make and to handshake), for 127.0.0.1. The load generators do not
// verify it (autocannon never does), so no CA is needed.
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Write `cert.pem` and `key.pem` into `dir` (created if needed).
 * @param {string} dir
 * @returns {{ cert: string, key: string }}  their paths
 */
export function selfSignedCert(dir) {
  mkdirSync(dir, { recursive: true })
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  return { cert, key }
}
