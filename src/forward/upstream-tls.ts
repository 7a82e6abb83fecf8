// Forward stage, TLS to upstreams (mounts[].tls): which TLS connect options each upstream origin
// gets (its private CA beside or instead of the system's, a client certificate for mutual TLS, an
// SNI name), read from the PEM files at start and on each reload. The forwarder's Agent makes a
// connection pool per origin with these, so split searches and STOW's instance search (which
// share the Agent) verify the same way.
import { createHash } from 'node:crypto'
import type { SecureContext } from 'node:tls'
import type { MountConfig } from '../config/schema.js'
import { clientTls } from '../config/tls-files.js'
import { ConfigError } from '../errors.js'

/** What node:tls.connect takes for one upstream origin. */
export interface UpstreamTlsOptions {
  /** Built once per origin (config/tls-files.ts clientTls): trusted CAs and client certificate. */
  secureContext: SecureContext
  servername?: string
}

/** Every origin's TLS options, and a digest of them all (settings and file contents). */
export interface UpstreamTls {
  byOrigin: Map<string, UpstreamTlsOptions>
  /** Equal digests: the same settings and files; a reload with another one renews the pools. */
  digest: string
}

/**
 * Origin (`https://pacs.internal:8443`) → its TLS options, for every mount with `tls` (its
 * `upstream` and `wado`). Two mounts reaching one origin must agree: a ConfigError says which.
 */
export function upstreamTlsByOrigin(
  mounts: readonly Pick<MountConfig, 'upstream' | 'wado' | 'tls'>[],
): UpstreamTls {
  const byOrigin = new Map<string, UpstreamTlsOptions>()
  const digests: string[] = []
  const setting = new Map<string, { index: number; json: string }>()
  for (const [index, m] of mounts.entries()) {
    const json = JSON.stringify(m.tls ?? null)
    for (const url of m.wado ? [m.upstream, m.wado] : [m.upstream]) {
      const origin = new URL(url).origin
      const seen = setting.get(origin)
      if (seen && seen.json !== json)
        throw new ConfigError(
          `mounts[${index}].tls: mounts[${seen.index}] reaches ${origin} with other tls settings; give both the same`,
        )
      setting.set(origin, { index, json })
      if (!m.tls || byOrigin.has(origin)) continue
      const { secureContext, digest } = clientTls(`mounts[${index}].tls`, m.tls)
      byOrigin.set(origin, { secureContext, ...(m.tls.servername ? { servername: m.tls.servername } : {}) })
      digests.push(`${origin} ${digest}`)
    }
  }
  return { byOrigin, digest: createHash('sha256').update(digests.join('\n')).digest('hex') }
}
