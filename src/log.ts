// Logging: one pino logger (JSON lines on stdout). Secrets are kept out at the source — the
// pipeline logs token ids, never headers, and link URLs go through redactLink() — and the redact
// paths below are the safety net should a header object ever be logged.
import { type DestinationStream, type Logger, pino } from 'pino'
import { BatchedLineWriter } from './log-writer.js'

export type { Logger }

export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'token',
  'secret',
]

/**
 * `"time":"<ISO 8601>"` as pino.stdTimeFunctions.isoTime writes it, with the date part formatted
 * once per second instead of a Date and toISOString() per line.
 */
function isoTimeCached(): () => string {
  let second = -1
  let prefix = ''
  return () => {
    const now = Date.now()
    const s = Math.floor(now / 1000)
    if (s !== second) {
      second = s
      // "2026-11-23T19:00:00." — everything up to the milliseconds.
      prefix = `,"time":"${new Date(s * 1000).toISOString().slice(0, 20)}`
    }
    const ms = now - s * 1000
    return `${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`
  }
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // pid tells worker processes apart (workers: N).
      base: { service: 'tokengate', pid: process.pid },
      timestamp: isoTimeCached(),
      redact: { paths: REDACT_PATHS, censor: '<redacted>' },
      formatters: { level: (label) => ({ level: label }) },
    },
    // Batched synchronous writes to stdout (log-writer.ts).
    destination ?? new BatchedLineWriter(1),
  )
}

/** The fields of one access-log line (server/pipeline.ts); absent ones are left out. */
export interface AccessEntry {
  requestId: string
  method: string | undefined
  path: string
  status: number
  mount: string | undefined
  via: string | undefined
  tokenId: string | undefined
  user: string | undefined
  scope: string | undefined
  reason: string
  cache: string
  bytesIn: number
  bytesOut: number
  /** Milliseconds; written rounded to the microsecond. */
  authMs: number
  upstreamMs: number
  totalMs: number
  remote: string | undefined
}

/** Writes one access-log line per request. */
export interface AccessLog {
  write(entry: AccessEntry): void
}

/** Whether a string can be written between quotes as it is (no quote, backslash, control or surrogate). */
function plainJson(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false
  }
  return true
}

/** A JSON string member (`,"name":"value"`), or nothing for an absent value. */
function str(name: string, value: string | undefined): string {
  if (value === undefined) return ''
  return plainJson(value) ? `,"${name}":"${value}"` : `,"${name}":${JSON.stringify(value)}`
}

/** A JSON number member; a non-finite number (never expected) as null, so the line stays JSON. */
function num(name: string, value: number): string {
  return `,"${name}":${Number.isFinite(value) ? value : null}`
}

/**
 * Milliseconds rounded to the microsecond, as a JSON number: integer arithmetic and two integer
 * conversions instead of printing a double (the same value, e.g. 0.123, 12.05).
 */
function ms(name: string, value: number): string {
  if (!Number.isFinite(value) || value < 0 || value > 1e9) return num(name, value)
  const us = Math.round(value * 1000)
  const frac = us % 1000
  if (frac === 0) return `,"${name}":${(us - frac) / 1000}`
  const digits = frac < 10 ? `00${frac}` : frac < 100 ? `0${frac}` : `${frac}`
  // No trailing zeros, as JSON.stringify writes 0.12 rather than 0.120.
  let end = 3
  while (digits.charCodeAt(end - 1) === 0x30) end--
  return `,"${name}":${(us - frac) / 1000}.${digits.slice(0, end)}`
}

/**
 * The access-log writer: the line pino would write for `log.info(entry, 'request')` (same level,
 * time, base fields and destination, so it interleaves whole with the other lines), formatted
 * directly instead of by pino's generic serializer, which cost several µs per request. No
 * redaction pass: every field is built by the pipeline from values that hold no secret (token id,
 * redacted path, numbers); the secret-never-logged test covers it.
 */
export function accessLogger(log: Logger): AccessLog {
  const symbols = pino.symbols
  const held = log as unknown as Record<symbol, unknown>
  const stream = held[symbols.streamSym] as DestinationStream
  const time = held[symbols.timeSym] as () => string
  // The logger's bindings (`,"service":"tokengate","pid":…`), as pino writes them after the time.
  const bindings = (held[symbols.chindingsSym] as string | undefined) ?? ''
  return {
    write(e) {
      stream.write(
        `{"level":"info"${time()}${bindings}${str('requestId', e.requestId)}${str('method', e.method)}${str('path', e.path)}${num('status', e.status)}${str('mount', e.mount)}${str('via', e.via)}${str('tokenId', e.tokenId)}${str('user', e.user)}${str('scope', e.scope)}${str('reason', e.reason)}${str('cache', e.cache)}${num('bytesIn', e.bytesIn)}${num('bytesOut', e.bytesOut)}${ms('authMs', e.authMs)}${ms('upstreamMs', e.upstreamMs)}${ms('totalMs', e.totalMs)}${str('remote', e.remote)},"msg":"request"}\n`,
      )
    },
  }
}
