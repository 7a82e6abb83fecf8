// Durations in config and on the CLI: "800ms", "30s", "5m", "12h", "30d", "2w", or a bare number
// of milliseconds. One parser so `cache.ttl` and `token create --expires` read the same way.

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
