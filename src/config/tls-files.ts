// TLS files named by the config (listen.tls, mounts[].tls, redis.tls): one place that lists them,
// checks they are readable (loading a config file, so `check-config`, start and SIGHUP say which
// key names a missing or unreadable file) and reads them into what node:tls takes.
import { createHash } from 'node:crypto'
import { constants, readFileSync } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls'
import { ConfigError } from '../errors.js'
import type { Config } from './schema.js'

/** A client TLS section as configured (mounts[].tls, redis.tls). */
export interface ClientTlsSection {
  ca?: string | undefined
  systemCa: boolean
  cert?: string | undefined
  key?: string | undefined
}

/** A client TLS section read: one SecureContext, and a digest of what went into it. */
export interface ClientTls {
  secureContext: SecureContext
  /** sha256 over the settings and the files' bytes: equal digests, same trust and certificate. */
  digest: string
}

/** Every TLS file the config names, with the key that names it (`mounts[0].tls.ca`). */
export function tlsFiles(config: Config): { key: string; path: string }[] {
  const out: { key: string; path: string }[] = []
  const add = (prefix: string, section: Record<string, unknown> | undefined, names: readonly string[]) => {
    for (const name of names) {
      const path = section?.[name]
      if (typeof path === 'string') out.push({ key: `${prefix}.${name}`, path })
    }
  }
  add('listen.tls', config.listen.tls, ['cert', 'key'])
  for (const [i, m] of config.mounts.entries()) add(`mounts[${i}].tls`, m.tls, ['ca', 'cert', 'key'])
  add('redis.tls', config.redis.tls, ['ca', 'cert', 'key'])
  return out
}

function why(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file (ENOENT)'
  if (code === 'EACCES') return 'not readable by this user (EACCES)'
  if (code === 'EISDIR') return 'is a directory (EISDIR)'
  return (err as Error).message
}

/** One problem line per TLS file that is missing, unreadable or not PEM (`key: path: why`). */
export async function checkTlsFiles(config: Config): Promise<string[]> {
  const problems: string[] = []
  for (const { key, path } of tlsFiles(config)) {
    try {
      await access(path, constants.R_OK)
      const text = await readFile(path, 'utf8')
      if (!text.includes('-----BEGIN '))
        problems.push(`${key}: ${path}: not a PEM file (no "-----BEGIN" line)`)
    } catch (err) {
      problems.push(`${key}: ${path}: ${why(err)}`)
    }
  }
  return problems
}

/** Read the PEM files of one TLS section (ca/cert/key) now; a failure names the key. */
export function readPems<K extends string>(
  prefix: string,
  section: Partial<Record<K, string>>,
  names: readonly K[],
): Partial<Record<K, Buffer>> {
  const out: Partial<Record<K, Buffer>> = {}
  for (const name of names) {
    const path = section[name]
    if (path === undefined) continue
    try {
      out[name] = readFileSync(path)
    } catch (err) {
      throw new ConfigError(`${prefix}.${name}: ${path}: ${why(err)}`)
    }
  }
  return out
}

/**
 * The CA certificates a TLS client trusts: `ca` (one or more PEM certificates) beside the
 * system's (Node's bundled roots), or `ca` alone with `systemCa: false`.
 */
export function trustedCas(ca: Buffer, systemCa: boolean): (string | Buffer)[] {
  return systemCa ? [...rootCertificates, ca] : [ca]
}

/**
 * Read a client TLS section's files now and build its SecureContext once: given `ca` and the
 * system's roots on every connection, node:tls would parse ~140 certificates per handshake. A
 * missing file, or a certificate and key that do not go together, is a ConfigError naming `prefix`.
 */
export function clientTls(prefix: string, section: ClientTlsSection): ClientTls {
  const pems = readPems(prefix, section, ['ca', 'cert', 'key'] as const)
  let secureContext: SecureContext
  try {
    secureContext = createSecureContext({
      ...(pems.ca ? { ca: trustedCas(pems.ca, section.systemCa) } : {}),
      ...(pems.cert ? { cert: pems.cert, key: pems.key } : {}),
    })
  } catch (err) {
    throw new ConfigError(`${prefix}: ${(err as Error).message}`)
  }
  const hash = createHash('sha256').update(JSON.stringify(section))
  for (const pem of [pems.ca, pems.cert, pems.key]) hash.update(pem ?? '').update('\0')
  return { secureContext, digest: hash.digest('hex') }
}
