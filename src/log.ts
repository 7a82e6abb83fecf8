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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // pid tells worker processes apart (workers: N).
      base: { service: 'tokengate', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '<redacted>' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  )
}
