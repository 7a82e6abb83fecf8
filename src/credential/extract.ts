// Credential stage: find the one credential a request carries — `Authorization: Bearer <t>`,
// `Authorization: Basic base64(any:<t>)` (user name ignored) or the `<mount>/link/<t>/` path
// prefix — check its form and hash it. The raw secret never leaves this module.
import type { IncomingHttpHeaders } from 'node:http'
import { AmbiguousCredential, MalformedCredential, MissingCredential } from '../errors.js'
import type { RouteMatch } from '../route/match.js'
import type { TokenHash } from '../token/record.js'
import { type SecretPolicy, verifySecret } from './secret.js'

export interface Credential {
  via: 'bearer' | 'basic' | 'link'
  hash: TokenHash
  /**
   * Lower-case names of other headers whose value carries this secret (a link URL in Referer, the
   * secret in a Cookie): the rewrite stage removes them, so the secret never reaches the upstream.
   */
  leaks?: string[]
}

export interface CredentialSource {
  headers: IncomingHttpHeaders
  /** Node keeps only the first of repeated Authorization headers; the raw list shows them all. */
  rawHeaders: readonly string[]
  /** The request target as sent, for reading the link secret at `route.linkSecretAt`. */
  rawUrl: string
}

// RFC 7617 §2 / RFC 4648 §4: standard base64 alphabet, padding only at the end.
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

function authorizationHeaders(src: CredentialSource): string[] {
  if (src.headers.authorization === undefined) return []
  const values: string[] = []
  for (let i = 0; i < src.rawHeaders.length; i += 2) {
    if ((src.rawHeaders[i] as string).toLowerCase() === 'authorization')
      values.push(src.rawHeaders[i + 1] as string)
  }
  return values
}

function fromAuthorization(value: string): { via: 'bearer' | 'basic'; secret: string } {
  const trimmed = value.trim()
  const space = trimmed.indexOf(' ')
  const scheme = (space === -1 ? trimmed : trimmed.slice(0, space)).toLowerCase()
  const param = space === -1 ? '' : trimmed.slice(space + 1).trim()
  if (scheme === 'bearer') {
    // RFC 6750 §2.1: b64token, one value; a space inside means something else was meant.
    if (param === '') throw new MalformedCredential('empty_secret')
    if (/\s/.test(param)) throw new MalformedCredential('bad_scheme')
    return { via: 'bearer', secret: param }
  }
  if (scheme === 'basic') {
    if (!BASE64.test(param) || param.length % 4 !== 0) throw new MalformedCredential('bad_base64')
    const decoded = Buffer.from(param, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon === -1) throw new MalformedCredential('bad_base64')
    // RFC 7617: split at the first colon; the user name is ignored, the password is the token.
    const secret = decoded.slice(colon + 1)
    if (secret === '') throw new MalformedCredential('empty_secret')
    return { via: 'basic', secret }
  }
  throw new MalformedCredential('bad_scheme')
}

function fromLink(src: CredentialSource, at: [number, number]): string {
  const raw = src.rawUrl.slice(at[0], at[1])
  if (!raw.includes('%')) return raw
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new MalformedCredential('bad_link')
  }
}

function inQuery(query: string, secret: string): boolean {
  if (query.includes(secret)) return true
  if (!query.includes('%') && !query.includes('+')) return false
  try {
    return decodeURIComponent(query.replace(/\+/g, ' ')).includes(secret)
  } catch {
    return false
  }
}

/** `value` carries `secret`, as sent or percent-decoded (a Cookie or a URL may encode it). */
function carries(value: string, secret: string): boolean {
  if (value.includes(secret)) return true
  if (!value.includes('%')) return false
  try {
    return decodeURIComponent(value).includes(secret)
  } catch {
    return value
      .replace(/%[0-9A-Fa-f]{2}/g, (h) => String.fromCharCode(Number.parseInt(h.slice(1), 16)))
      .includes(secret)
  }
}

/** Names of the headers other than Authorization whose value carries the secret; usually none. */
function leakingHeaders(rawHeaders: readonly string[], secret: string): string[] | undefined {
  let leaks: string[] | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!carries(rawHeaders[i + 1] as string, secret)) continue
    const name = (rawHeaders[i] as string).toLowerCase()
    if (name === 'authorization') continue
    if (!leaks) leaks = []
    leaks.push(name)
  }
  return leaks
}

/**
 * The request's credential, hashed. Throws MissingCredential (none), MalformedCredential,
 * AmbiguousCredential (two different ones) or InvalidToken('bad_checksum') (wrong form: no
 * store lookup is needed to refuse it).
 */
export function extractCredential(
  src: CredentialSource,
  route: Pick<RouteMatch, 'linkSecretAt' | 'query'>,
  policy: SecretPolicy,
): Credential {
  const found: { via: Credential['via']; secret: string }[] = []
  for (const value of authorizationHeaders(src)) found.push(fromAuthorization(value))
  if (route.linkSecretAt) found.push({ via: 'link', secret: fromLink(src, route.linkSecretAt) })

  const first = found[0]
  if (!first) throw new MissingCredential('none')
  for (let i = 1; i < found.length; i++) {
    if ((found[i] as { secret: string }).secret !== first.secret)
      throw new AmbiguousCredential('two_credentials')
  }
  const hash = verifySecret(first.secret, policy)
  // The query goes upstream and into logs as-is: a token misplaced there would leak both ways.
  if (route.query !== '' && inQuery(route.query, first.secret))
    throw new MalformedCredential('secret_in_query')
  const leaks = leakingHeaders(src.rawHeaders, first.secret)
  return leaks ? { via: first.via, hash, leaks } : { via: first.via, hash }
}
