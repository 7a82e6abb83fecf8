// Generated inputs for property tests, on fast-check: each case gets an `Rng` whose draws come
// from fast-check (`fc.gen()`), so a failing case is reported with its seed and path, replayed
// with TG_FUZZ_SEED, and shrunk (towards smaller draws: shorter, plainer inputs). The generators
// stay small imperative functions over `Rng`.
// Usage: await forAll(runs('TG_FUZZ_RUNS', 300), (rng) => { … })
import fc from 'fast-check'

/** A draw in [0, 1). */
export type Rng = () => number

/** How many cases: the environment variable (e.g. 10000 in the fuzz run), else `fallback`. */
export function runs(env: string, fallback: number): number {
  const n = Number(process.env[env])
  return Number.isInteger(n) && n > 0 ? n : fallback
}

export const int = (rng: Rng, min: number, max: number): number => min + Math.floor(rng() * (max - min + 1))
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, 0, items.length - 1)] as T
export const chance = (rng: Rng, p: number): boolean => rng() < p

const uniform = () => fc.noBias(fc.integer({ min: 0, max: 0x7fffffff }))

/** Run `body` for `count` generated cases; rejects with fast-check's report of the first failure. */
export async function forAll(count: number, body: (rng: Rng) => void | Promise<void>): Promise<void> {
  const seed = process.env.TG_FUZZ_SEED ? Number(process.env.TG_FUZZ_SEED) : undefined
  await fc.assert(
    fc.asyncProperty(fc.gen(), async (g) => {
      // Unbiased draws: fast-check's default bias would make every `chance` come true.
      await body(() => g(uniform) / 0x80000000)
    }),
    { numRuns: count, ...(seed !== undefined ? { seed } : {}) },
  )
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
