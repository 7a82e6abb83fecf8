// Durations in config and on the CLI: "800ms", "30s", "5m", "12h", "30d", "2w", or a bare number
// of milliseconds. One parser so `cache.ttl` and `token create --expires` read the same way; and
// one ISO date parser so `token create --expires` and `audit --since` read dates the same way.

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/

/** Milliseconds for a duration string or number; `undefined` when it is not one. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined
  const text = input.trim()
  if (/^\d+$/.test(text)) return Number(text)
  const m = DURATION.exec(text)
  if (!m) return undefined
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] as number))
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/

/**
 * Milliseconds since the epoch for an ISO 8601 date (`2027-01-31`, `2027-01-31T12:00:00Z`);
 * `undefined` when it is not one, or names a day the calendar lacks (`2027-02-30`).
 */
export function parseIsoDate(input: string): number | undefined {
  const text = input.trim()
  const m = ISO_DATE.exec(text)
  if (!m) return undefined
  const parsed = Date.parse(text)
  // Date.parse rolls 2027-02-30 over to March: check the calendar date is a real one.
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const real = new Date(Date.UTC(y, mo - 1, d))
  if (Number.isNaN(parsed) || real.getUTCMonth() !== mo - 1 || real.getUTCDate() !== d) return undefined
  return parsed
}
