// Logging: one pino logger (JSON lines on stdout). Secrets are kept out at the source — the
// pipeline logs token ids, never headers, and link URLs go through redactLink() — and the redact
// paths below are the safety net should a header object ever be logged.
import { type DestinationStream, type Logger, pino } from 'pino'

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
 * Lines are written to stdout in batches of at least 4 KiB, and at least every 250 ms: one
 * write(2) per ~10 access-log lines instead of one per line was the largest single cost of a
 * cache-hit request in the profile (bench/README.md). pino flushes what is left on exit.
 */
const BATCH_BYTES = 4096
const BATCH_MAX_DELAY_MS = 250

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
    destination ??
      pino.destination({ fd: 1, sync: false, minLength: BATCH_BYTES, periodicFlush: BATCH_MAX_DELAY_MS }),
  )
}

/**
 * The access-log writer: the same logger and destination without the redaction pass, because
 * every field of an access line is built by the pipeline from values that hold no secret (token
 * id, redacted path, numbers); the secret-never-logged test covers it.
 */
export function accessLogger(log: Logger): Logger {
  return log.child({}, { redact: { paths: [] } })
}
