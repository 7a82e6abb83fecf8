// Value schemas the config sections share: durations, URLs, ports, CIDR blocks, Redis nodes, PEM
// files and the TLS client fields (mounts[].tls, redis.tls). config/schema.ts composes them.
import { isIP } from 'node:net'
import { z } from 'zod'
import { parseDuration } from './duration.js'

/** A duration such as "30s", "5m", "800ms" or a number of milliseconds; parsed to milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value)
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like "30s", "5m" or "800ms", got "${value}"`,
    })
    return z.NEVER
  }
  return ms
})

export const httpUrl = z.string().refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), {
  message: 'expected an http:// or https:// URL',
})

export const port = z.number().int().min(0).max(65535)

/** An IPv4 or IPv6 CIDR block (`10.0.0.0/8`, `fd00::/8`) or a single address. */
export const cidr = z.string().refine(
  (v) => {
    const slash = v.indexOf('/')
    const address = slash === -1 ? v : v.slice(0, slash)
    const version = isIP(address)
    if (version === 0) return false
    if (slash === -1) return true
    const bits = v.slice(slash + 1)
    return /^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128)
  },
  { message: 'expected an IP address or a CIDR block like "10.0.0.0/8" or "fd00::/8"' },
)

/** A Sentinel or Cluster node, `host:port` (`[::1]:26379` for IPv6), as ioredis takes it. */
export const redisNode = z.string().transform((value, ctx) => {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(value.trim())
  const portNumber = Number(m?.[3])
  if (!m || portNumber < 1 || portNumber > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected "host:port" like "127.0.0.1:26379", got "${value}"` })
    return z.NEVER
  }
  return { host: (m[1] ?? m[2]) as string, port: portNumber }
})

/** A PEM file path (read at start, on SIGHUP for the listener's certificate, and by check-config). */
export const pemFile = z.string().min(1, 'expected a file path')

/** A client certificate needs its key, and a key its certificate; `systemCa: false` needs a `ca`. */
export function clientTlsChecks(
  t: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined; systemCa: boolean },
  ctx: z.RefinementCtx,
): void {
  if ((t.cert === undefined) !== (t.key === undefined))
    ctx.addIssue({ code: 'custom', path: [t.cert ? 'key' : 'cert'], message: 'give cert and key together' })
  if (!t.systemCa && t.ca === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['systemCa'],
      message: 'systemCa: false needs a ca (otherwise no certificate would be trusted)',
    })
}

/** What tokengate trusts and presents as a TLS client (mounts[].tls, redis.tls). */
export const clientTlsFields = {
  /** PEM CA certificate(s) to trust, in addition to the system's CAs (see `systemCa`). */
  ca: pemFile.optional(),
  /**
   * Trust the system's CAs too (Node's bundled Mozilla roots) beside `ca`: true, the default.
   * false: trust `ca` only, so a certificate from a public CA is refused.
   */
  systemCa: z.boolean().default(true),
  /** PEM client certificate (chain) sent when the server asks for one (mutual TLS). Needs `key`. */
  cert: pemFile.optional(),
  /** PEM private key of `cert`. */
  key: pemFile.optional(),
}
