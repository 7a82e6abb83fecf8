// The admin API's HTTP plumbing (admin/api.ts has the routes): the admin key check in constant
// time, the JSON body read with a size cap, the query and body field checks, and the JSON answers.
// Refusals are thrown as AdminRefused and answered with the status errors.ts's ADMIN_API_ERRORS
// gives them, as `{"error", "reason", "field"}`. Nothing here logs, nor echoes a body back.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ADMIN_API_ERRORS, type AdminRefusal } from '../errors.js'
import { isConnectionError } from '../token/redis-client.js'
import { AdminInputError, AdminNotFound } from './input-error.js'

/** Largest request body read (64 KB): a create request is a few hundred bytes. */
export const BODY_LIMIT = 64 * 1024

/** A parsed JSON object body. */
export type JsonBody = Record<string, unknown>

/** A refusal by the API itself (auth, routing, body), before or beside TokenAdmin's own checks. */
export class AdminRefused extends Error {
  constructor(
    readonly refusal: AdminRefusal,
    message: string,
    readonly field?: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message)
    this.name = 'AdminRefused'
  }
}

/** sha256 of the admin key, computed once; compared against the digest of what a client sends. */
export function keyDigest(key: string): Buffer {
  return createHash('sha256').update(key).digest()
}

/** Throws `unauthorized` unless `Authorization: Bearer <admin key>`. */
export function authenticate(req: IncomingMessage, expected: Buffer): void {
  const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')
  // Equal-length digests: timingSafeEqual compares them without an early exit, so the time taken
  // says nothing about how much of the key was right, nor about its length.
  const given = createHash('sha256')
    .update(m?.[1] ?? '')
    .digest()
  if (!timingSafeEqual(given, expected) || !m) {
    throw new AdminRefused('unauthorized', 'send the admin key as `Authorization: Bearer <key>`')
  }
}

/** Whether the request carries a body (Content-Length > 0, or chunked). */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

/**
 * The JSON object body, or undefined when there is none (no bytes: an empty chunked body is none
 * too, as Node's client sends on a bodiless POST). 413 past `limit` bytes (declared or counted),
 * 415 unless `application/json` (UTF-8), 400 for bad JSON or anything but an object.
 */
export async function readJsonBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<JsonBody | undefined> {
  if (!hasBody(req)) return undefined
  const tooLarge = () => new AdminRefused('body_too_large', `the body is larger than ${limit} bytes`)
  if (Number(req.headers['content-length'] ?? 0) > limit) throw tooLarge()
  const bytes = await readCapped(req, limit, tooLarge)
  if (bytes.length === 0) return undefined
  const type = req.headers['content-type'] ?? ''
  const [media, ...params] = type.split(';').map((p) => p.trim().toLowerCase())
  const charset = params.find((p) => p.startsWith('charset='))?.slice(8)
  if (media !== 'application/json' || (charset !== undefined && charset.replace(/"/g, '') !== 'utf-8')) {
    throw new AdminRefused(
      'unsupported_media_type',
      `send the body as Content-Type: application/json (got ${type ? `"${type}"` : 'none'})`,
    )
  }
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    // The parser's message quotes the body: not repeated, the body may hold anything.
    throw new AdminRefused('bad_json', 'the body is not valid JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new AdminRefused('bad_json', 'the body must be a JSON object')
  }
  return value as JsonBody
}

/** The body's bytes, refusing past `limit` without reading further (the rest drains unread). */
function readCapped(req: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (fn: () => void) => {
      req.off('data', onData).off('end', onEnd).off('error', onCut).off('close', onCut)
      fn()
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) done(() => reject(tooLarge()))
      else chunks.push(chunk)
    }
    const onEnd = () => done(() => resolve(Buffer.concat(chunks)))
    const onCut = () => done(() => reject(new AdminRefused('bad_json', 'the body was cut off')))
    req.on('data', onData).on('end', onEnd).on('error', onCut).on('close', onCut)
  })
}

/** Refuse body fields other than `allowed`; values are checked by the caller. */
export function checkFields(body: JsonBody | undefined, allowed: readonly string[]): void {
  for (const field of Object.keys(body ?? {})) {
    if (!allowed.includes(field)) {
      const expected = allowed.length
        ? `; expected ${allowed.join(', ')}`
        : ': this request takes no body fields'
      throw new AdminRefused('invalid_input', `unknown field "${field}"${expected}`, field)
    }
  }
}

/** The query parameters, each at most once and none but `allowed`. */
export function queryParams(query: URLSearchParams, allowed: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of query) {
    if (!allowed.includes(name)) {
      const expected = allowed.length ? `; expected ${allowed.join(', ')}` : ': this request takes none'
      throw new AdminRefused('invalid_input', `unknown query parameter "${name}"${expected}`, name)
    }
    if (name in out) throw new AdminRefused('invalid_input', `give the query parameter "${name}" once`, name)
    out[name] = value
  }
  return out
}

/** A body field that must be a string when present. */
export function optionalString(body: JsonBody | undefined, field: string): string | undefined {
  const value = body?.[field]
  if (value === undefined || typeof value === 'string') return value
  throw new AdminInputError(`"${field}" must be a string`, field)
}

/** The answer for anything thrown while handling a request. */
export function refusalOf(err: unknown, storeReady: () => boolean): AdminRefused {
  if (err instanceof AdminRefused) return err
  if (err instanceof AdminNotFound) return new AdminRefused('unknown_token', err.message, err.field)
  if (err instanceof AdminInputError) return new AdminRefused('invalid_input', err.message, err.field)
  if (!storeReady() || isConnectionError(err)) {
    return new AdminRefused('store_unavailable', 'the token store (Redis) is unavailable; retry later')
  }
  return new AdminRefused('bug', 'internal error (see the tokengate log)')
}

/** Write a JSON answer (never cached: it may hold a secret or a token's current state). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  })
  res.end(text)
}

/** Write a refusal: status and headers from ADMIN_API_ERRORS, body `{error, reason, field}`. */
export function sendRefusal(req: IncomingMessage, res: ServerResponse, r: AdminRefused): void {
  if (res.headersSent || res.destroyed) return
  const m = ADMIN_API_ERRORS[r.refusal]
  const headers: Record<string, string> = { ...m.headers, ...r.headers }
  // A body we did not (fully) read is not drained to keep the connection: close it.
  if (hasBody(req) && !req.readableEnded) headers.connection = 'close'
  sendJson(
    res,
    m.status,
    { error: m.error, reason: r.message, ...(r.field ? { field: r.field } : {}) },
    headers,
  )
}
