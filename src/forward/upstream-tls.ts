// Forward stage, TLS to upstreams (mounts[].tls): which TLS connect options each upstream origin
// gets (a private CA, a client certificate for mutual TLS, an SNI name), read from the PEM files
// once at start. The forwarder's one Agent makes a connection pool per origin with these, so
// split searches and STOW's instance search (which share the Agent) verify the same way.
import type { MountConfig } from '../config/schema.js'
import { readPems } from '../config/tls-files.js'
import { ConfigError } from '../errors.js'

/** What node:tls.connect takes for one upstream origin. */
export interface UpstreamTlsOptions {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  servername?: string
}

/**
 * Origin (`https://pacs.internal:8443`) → its TLS options, for every mount with `tls` (its
 * `upstream` and `wado`). Two mounts reaching one origin must agree: a ConfigError says which.
 */
export function upstreamTlsByOrigin(
  mounts: readonly Pick<MountConfig, 'upstream' | 'wado' | 'tls'>[],
): Map<string, UpstreamTlsOptions> {
  const out = new Map<string, UpstreamTlsOptions>()
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
      if (!m.tls || out.has(origin)) continue
      const pems = readPems(`mounts[${index}].tls`, m.tls, ['ca', 'cert', 'key'] as const)
      out.set(origin, { ...pems, ...(m.tls.servername ? { servername: m.tls.servername } : {}) })
    }
  }
  return out
}
