// Generated inputs for property tests, from a seeded PRNG (mulberry32): the same seed gives the
// same cases, and a failing case names its seed and index so it can be replayed. A stand-in for
// fast-check until it is installed (no shrinking; the generators are small functions that port
// to fast-check arbitraries one for one).
// Usage: forAll(runs('TG_FUZZ_RUNS', 300), (rng, i) => { … })

export type Rng = () => number

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** How many cases: the environment variable (e.g. 10000 in the fuzz run), else `fallback`. */
export function runs(env: string, fallback: number): number {
  const n = Number(process.env[env])
  return Number.isInteger(n) && n > 0 ? n : fallback
}

export const int = (rng: Rng, min: number, max: number): number => min + Math.floor(rng() * (max - min + 1))
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, 0, items.length - 1)] as T
export const chance = (rng: Rng, p: number): boolean => rng() < p

/** Run `body` for `count` cases, each with its own PRNG; throws with the seed of a failing case. */
export async function forAll(
  count: number,
  body: (rng: Rng, index: number) => void | Promise<void>,
  seed = Number(process.env.TG_FUZZ_SEED ?? 20261201),
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const rng = mulberry32(seed + i * 7919)
    try {
      await body(rng, i)
    } catch (err) {
      throw new Error(`case ${i} (TG_FUZZ_SEED=${seed}) failed: ${(err as Error).message}`, { cause: err })
    }
  }
}

/** `text` with some characters percent-encoded (once), case of the escape varied. */
export function percentSome(rng: Rng, text: string, p = 0.3): string {
  let out = ''
  for (const ch of text) {
    if (chance(rng, p)) {
      const hex = ch.charCodeAt(0).toString(16).padStart(2, '0')
      out += `%${chance(rng, 0.5) ? hex.toUpperCase() : hex}`
    } else out += ch
  }
  return out
}
