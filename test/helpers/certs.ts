// A throwaway PKI for TLS tests, made with the openssl CLI in a temp dir: a CA, and server or
// client certificates it signs (EC P-256: fast to make). Removed at teardown.
// Usage: const pki = await makePki(t); const server = pki.issue('server', { san: ['IP:127.0.0.1'] })
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Issued {
  /** PEM file paths. */
  cert: string
  key: string
  certPem: Buffer
  keyPem: Buffer
  /** SHA-256 fingerprint as node:tls reports it (`AB:CD:…`). */
  fingerprint256: string
}

export interface Pki {
  dir: string
  /** The CA certificate's path and PEM. */
  ca: string
  caPem: Buffer
  /**
   * A certificate signed by this CA; `san` like `['DNS:localhost', 'IP:127.0.0.1']`. For a server
   * by default; `client: true` for a client, and `server: true` beside it for both (a Redis node
   * that also connects to its peers).
   */
  issue(name: string, opts?: { san?: string[]; client?: boolean; server?: boolean }): Issued
  remove(): void
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

function ecKey(path: string, cwd: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path], cwd)
}

/** A new CA (named `cn`) in a fresh temp dir. */
export function makePki(cn = 'tokengate test CA'): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-pki-'))
  ecKey('ca.key', dir)
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-sha256',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-out',
      'ca.pem',
    ],
    dir,
  )
  let serial = 1
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    caPem: readFileSync(join(dir, 'ca.pem')),
    issue(name, opts = {}) {
      const san = opts.san ?? ['DNS:localhost', 'IP:127.0.0.1']
      ecKey(`${name}.key`, dir)
      openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`], dir)
      writeFileSync(
        join(dir, `${name}.ext`),
        [
          `subjectAltName=${san.join(',')}`,
          `extendedKeyUsage=${[
            ...(opts.server || !opts.client ? ['serverAuth'] : []),
            ...(opts.client ? ['clientAuth'] : []),
          ].join(',')}`,
          'basicConstraints=CA:FALSE',
        ].join('\n'),
      )
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-set_serial',
          String(serial++),
        ].concat(['-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`]),
        dir,
      )
      const certPem = readFileSync(join(dir, `${name}.pem`))
      return {
        cert: join(dir, `${name}.pem`),
        key: join(dir, `${name}.key`),
        certPem,
        keyPem: readFileSync(join(dir, `${name}.key`)),
        fingerprint256: new X509Certificate(certPem).fingerprint256,
      }
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
