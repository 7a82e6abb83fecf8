// Secrets (DESIGN §3): minting, format check, hashing, redaction. A minted secret is
// `<prefix><32 chars: 192 random bits, base64url><6 chars: checksum>`, so a mistyped or
// garbage secret is refused here, before any Redis call. Secrets without the prefix are
// "legacy" (imported from another system) and are accepted when `tokens.allowLegacy` is on.
// With `tokens.checksumKey`, the checksum is keyed (HMAC-SHA256): a forger who knows the format
// but not the key cannot make a secret that passes, so forged secrets cost no Redis call either.
// Secrets minted before the key (plain sha256 checksum) pass while `tokens.allowUnkeyed` is on;
// secrets minted with a retired key pass while it is listed in `tokens.previousChecksumKeys`.
import * as crypto from 'node:crypto'
import { InvalidToken, MalformedCredential } from '../errors.js'
import type { TokenHash } from '../token/record.js'

const BODY_CHARS = 32
const CHECK_CHARS = 6
const URL_SAFE = /^[A-Za-z0-9_-]+$/
/**
 * Legacy secrets: URL-safe printable (`:` included: it is a pchar, and Basic splits at the first
 * colon so such a token survives), bounded so a huge header cannot cost a big hash.
 */
const LEGACY = /^[A-Za-z0-9._~+/=:-]{8,512}$/

export interface SecretPolicy {
  prefix: string
  allowLegacy: boolean
  /** Keys whose checksums are accepted (the minting key first); none: the plain checksum only. */
  checksumKeys?: readonly string[]
  /** With keys, still accept the plain (unkeyed) checksum; default true. */
  allowUnkeyed?: boolean
}

/**
 * sha256 of a string in one call: crypto.hash (Node ≥ 20.12) skips the Hash object a request would
 * otherwise allocate twice (checksum and lookup hash); older Node 20 falls back to createHash.
 */
const sha256: (data: string, encoding: 'hex' | 'base64url') => string =
  typeof crypto.hash === 'function'
    ? (data, encoding) => crypto.hash('sha256', data, encoding)
    : (data, encoding) => crypto.createHash('sha256').update(data).digest(encoding)

function checksum(body: string, key?: string): string {
  if (key === undefined) return sha256(body, 'base64url').slice(0, CHECK_CHARS)
  return crypto.createHmac('sha256', key).update(body).digest('base64url').slice(0, CHECK_CHARS)
}

/** Whether `check` is the body's checksum under the policy: a listed key's, or (if allowed) the plain one. */
function checksumPasses(body: string, check: string, policy: SecretPolicy): boolean {
  const keys = policy.checksumKeys
  if (!keys || keys.length === 0) return checksum(body) === check
  for (const key of keys) if (checksum(body, key) === check) return true
  return policy.allowUnkeyed !== false && checksum(body) === check
}

/** A new secret: shown once to the admin, never stored. Keyed when `checksumKey` is given. */
export function mintSecret(prefix: string, checksumKey?: string): string {
  const body = crypto.randomBytes(24).toString('base64url')
  return `${prefix}${body}${checksum(body, checksumKey)}`
}

/** sha256 hex: the only form in which a secret is stored or looked up. */
export function hashSecret(secret: string): TokenHash {
  return sha256(secret, 'hex') as TokenHash
}

/**
 * Check a presented secret's form and return its hash. Throws MalformedCredential (empty) or
 * InvalidToken('bad_checksum') for a prefixed secret whose checksum fails or a non-prefixed
 * one when legacy secrets are off: both without touching the store.
 */
export function verifySecret(secret: string, policy: SecretPolicy): TokenHash {
  if (secret.length === 0) throw new MalformedCredential('empty_secret')
  if (secret.startsWith(policy.prefix)) {
    const rest = secret.slice(policy.prefix.length)
    if (rest.length !== BODY_CHARS + CHECK_CHARS || !URL_SAFE.test(rest)) {
      throw new InvalidToken('bad_checksum')
    }
    if (!checksumPasses(rest.slice(0, BODY_CHARS), rest.slice(BODY_CHARS), policy))
      throw new InvalidToken('bad_checksum')
    return hashSecret(secret)
  }
  if (!policy.allowLegacy || !LEGACY.test(secret)) throw new InvalidToken('bad_checksum')
  return hashSecret(secret)
}

/** Replace every `/link/<secret>/` segment in a URL or path with `/link/<redacted>/` (logs). */
export function redactLink(url: string): string {
  // The segment ends where route/match.ts ends it (`/`, or the query): a `#` inside is still secret.
  return url.replace(/\/link\/[^/?]*/g, '/link/<redacted>')
}

/**
 * The request path as logs show it: link secrets redacted and the query left out, since QIDO
 * queries carry patient data (PatientName=…) and a client may misplace a token there.
 */
export function loggablePath(rawUrl: string): string {
  const q = rawUrl.indexOf('?')
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
  // Every request is logged: skip the regex when there is nothing to redact.
  return path.includes('/link/') ? redactLink(path) : path
}
