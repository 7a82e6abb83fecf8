// Server, before the pipeline's stages: who the client is. `X-Forwarded-For`/`-Proto`/`-Host`
// and `Forwarded` are believed only when the TCP peer is a configured trusted proxy
// (`trustedProxies`); otherwise any client could pick the address the failed-auth limiter counts,
// the address the upstream logs and the host public URLs are built on.
import type { IncomingHttpHeaders } from 'node:http'
import { BlockList, isIP } from 'node:net'

/** The client as tokengate believes it. */
export interface ClientAddress {
  /** The client's address: the TCP peer, or the nearest untrusted hop a trusted proxy named. */
  address: string
  /** The TCP peer (a trusted proxy, or the client itself). */
  peer: string
  /** X-Forwarded-For / -Proto / -Host as the trusted proxy sent them; absent from anyone else. */
  forwardedFor?: string | undefined
  forwardedProto?: string | undefined
  forwardedHost?: string | undefined
}

/** The trusted proxies of the config, as a BlockList; null when none (the default). */
export type TrustedProxies = BlockList | null

/** `10.0.0.0/8`, `2001:db8::/32` or a bare address. Throws on anything else (the schema checks first). */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  const version = isIP(address)
  if (version === 0) throw new Error(`"${text}" is not an IP address or CIDR block`)
  const max = version === 4 ? 32 : 128
  const prefix = slash === -1 ? max : Number(text.slice(slash + 1))
  if (
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > max ||
    (slash !== -1 && !/^\d+$/.test(text.slice(slash + 1)))
  )
    throw new Error(`"${text}" has a bad prefix length (0–${max})`)
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' }
}

export function trustedProxies(cidrs: readonly string[]): TrustedProxies {
  if (cidrs.length === 0) return null
  const list = new BlockList()
  for (const text of cidrs) {
    const { address, prefix, family } = parseCidr(text)
    list.addSubnet(address, prefix, family)
  }
  return list
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is 10.0.0.1. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

function isTrusted(list: BlockList, address: string): boolean {
  const a = plain(address)
  const v = isIP(a)
  return v !== 0 && list.check(a, v === 4 ? 'ipv4' : 'ipv6')
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

/** The `for=` values of a Forwarded header (RFC 7239 §4), in order; obfuscated ones as written. */
function forwardedFor(value: string): string[] {
  const out: string[] = []
  for (const m of value.matchAll(/(?:^|[;,\s])for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)/gi)) {
    let v = (m[1] ?? '').replace(/^"|"$/g, '').replace(/\\(.)/g, '$1')
    // `[2001:db8::1]:4711` and `192.0.2.1:4711`: the address without its port.
    if (v.startsWith('[')) v = v.slice(1, v.indexOf(']') === -1 ? undefined : v.indexOf(']'))
    else if (/^[\d.]+:\d+$/.test(v)) v = v.slice(0, v.indexOf(':'))
    out.push(v)
  }
  return out
}

/**
 * The client behind the connection. With no trusted proxies (the default) this is the TCP peer
 * and nothing the client wrote is believed. From a trusted proxy, the address is the rightmost hop
 * of X-Forwarded-For (else Forwarded `for=`) that is not itself a trusted proxy.
 */
export function resolveClient(
  peerAddress: string | undefined,
  headers: IncomingHttpHeaders,
  trusted: TrustedProxies,
): ClientAddress {
  const peer = peerAddress ?? ''
  if (!trusted || !isTrusted(trusted, peer)) return { address: peer, peer }
  const xff = header(headers, 'x-forwarded-for')
  const forwarded = header(headers, 'forwarded')
  const hops = xff ? xff.split(',').map((h) => h.trim()) : forwarded ? forwardedFor(forwarded) : []
  let address = peer
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string
    if (isIP(plain(hop)) === 0) break // garbage or an obfuscated name: stop at the last real one
    address = plain(hop)
    if (!isTrusted(trusted, hop)) break
  }
  return {
    address,
    peer,
    forwardedFor: xff,
    forwardedProto: header(headers, 'x-forwarded-proto'),
    forwardedHost: header(headers, 'x-forwarded-host'),
  }
}
