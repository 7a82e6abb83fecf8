// Rewrite stage, response URLs (both scoping modes): which URL prefixes the upstream writes into
// its DICOM JSON answers (RetrieveURL, BulkDataURI) and what tokengate's public prefix for them is,
// so forward/url-rewriter.ts can point them back at tokengate. Link requests keep their
// /link/<token>/ so a client following a URL stays authenticated.
import type { RouteMatch } from '../route/match.js'
import { type ClientView, forwardedOrigin, forwardedValue } from './identity-headers.js'

/** URL prefix pairs [upstream, public], longest upstream prefix first; no trailing slashes. */
export interface UrlRewrite {
  bases: readonly (readonly [string, string])[]
  /**
   * The upstream prefixes (bases' first halves) as bytes: a whole body holding none of them, and
   * no JSON escape, has nothing to rewrite (forward/url-rewriter.ts skips the lexer).
   */
  needles?: readonly Buffer[]
}

/** What the planner knows of the request for building public URLs. */
export interface PublicView {
  host: string | undefined
  encrypted: boolean
  /** X-Forwarded-Host / X-Forwarded-Proto as sent (first value used). */
  forwardedHost?: string | undefined
  forwardedProto?: string | undefined
  /** The request target as sent, for the link segment. */
  rawUrl: string
}

function first(value: string | undefined): string | undefined {
  const v = value?.split(',')[0]?.trim()
  return v ? v : undefined
}

function trimSlash(s: string): string {
  return s.replace(/\/+$/, '')
}

/**
 * tokengate's public URL for the mount: `publicUrl`, else X-Forwarded-Proto/-Host, else the
 * request's Host; plus the mount path, plus `/link/<token>` for link requests. The link segment
 * is the client's own (it is in the URL it sent); it goes only into this client's response.
 */
export function publicMountUrl(route: RouteMatch, view: PublicView, publicUrl: string | undefined): string {
  let origin: string
  if (publicUrl) {
    origin = trimSlash(publicUrl)
  } else {
    const xfProto = first(view.forwardedProto)?.toLowerCase()
    const proto = xfProto === 'http' || xfProto === 'https' ? xfProto : view.encrypted ? 'https' : 'http'
    origin = `${proto}://${first(view.forwardedHost) ?? view.host ?? 'localhost'}`
  }
  const link = route.linkSecretAt
    ? `/link/${view.rawUrl.slice(route.linkSecretAt[0], route.linkSecretAt[1])}`
    : ''
  return `${origin}${route.mount.prefix}${link}`
}

/** A mount's upstream prefixes for one forwarded origin: [upstream prefix, suffix of the public one]. */
interface UpstreamPrefixes {
  froms: readonly (readonly [string, string])[]
  needles: readonly Buffer[]
}

/**
 * Per compiled mount (one per config), per forwarded origin (publicUrl's, or tokengate's own local
 * address: never the client's Host, so a handful): the prefixes, sorted, built once instead of per
 * request. Cleared past a few dozen origins, should a listener have many addresses.
 */
const prefixCache = new WeakMap<RouteMatch['mount'], Map<string, UpstreamPrefixes>>()
const PREFIX_CACHE_MAX = 64

/** The last answer: one mount and one listener address serve most requests. */
let last: {
  mount: RouteMatch['mount']
  host: string | undefined
  proto: string
  found: UpstreamPrefixes
} | null = null

function upstreamPrefixes(
  mount: RouteMatch['mount'],
  host: string | undefined,
  proto: string,
): UpstreamPrefixes {
  if (last && last.mount === mount && last.host === host && last.proto === proto) return last.found
  const found = prefixesOf(mount, host, proto)
  last = { mount, host, proto, found }
  return found
}

function prefixesOf(mount: RouteMatch['mount'], host: string | undefined, proto: string): UpstreamPrefixes {
  let byOrigin = prefixCache.get(mount)
  if (!byOrigin) {
    byOrigin = new Map()
    prefixCache.set(mount, byOrigin)
  }
  const key = `${proto}://${host ?? ''}`
  let found = byOrigin.get(key)
  if (found) return found
  // As identity-headers.ts's Forwarded element says (publicUrl's host, else tokengate's own
  // address, never the client's Host). Orthanc 1.10 copies a quoted host ("127.0.0.1:8080",
  // RFC 7239 quoting) into its URLs as it is, quotes included: both spellings are the upstream's.
  const forwarded = host ? [`${proto}://${host}`, `${proto}://${forwardedValue(host)}`] : []
  const pairs = new Map<string, string>()
  const add = (base: URL, suffix: string) => {
    const path = trimSlash(base.pathname)
    pairs.set(`${base.origin}${path}`, suffix)
    for (const origin of forwarded) pairs.set(`${origin}${path}`, suffix)
  }
  add(mount.upstream, '')
  for (const alias of mount.config.upstreamAliases) add(new URL(alias), '')
  if (mount.wado) add(mount.wado, '/wado')
  const froms = [...pairs].sort((a, b) => b[0].length - a[0].length)
  found = { froms, needles: froms.map(([from]) => Buffer.from(from)) }
  if (byOrigin.size >= PREFIX_CACHE_MAX) byOrigin.clear()
  byOrigin.set(key, found)
  return found
}

/**
 * The prefixes to rewrite: each upstream base as configured, as the upstream rebuilds it from the
 * `Forwarded` header tokengate sends (Orthanc does: `http://"<client Host>"/dicom-web/…`), and the
 * mount's `upstreamAliases`; WADO-URI's base maps to `<public>/wado`.
 */
export function planResponseUrls(
  route: RouteMatch,
  view: PublicView & Pick<ClientView, 'localAddress' | 'localPort'>,
  publicUrl: string | undefined,
): UrlRewrite {
  const to = publicMountUrl(route, view, publicUrl)
  // The local address and scheme (or publicUrl's): never the client's address or Host.
  const { host, proto } = forwardedOrigin(view, publicUrl)
  const { froms, needles } = upstreamPrefixes(route.mount, host, proto)
  return { bases: froms.map(([from, suffix]) => [from, to + suffix] as const), needles }
}
