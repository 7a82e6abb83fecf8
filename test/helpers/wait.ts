// Waiting for a condition instead of sleeping a fixed time: poll `check` until it returns something
// truthy (returned), or fail after the timeout naming what was awaited (and the last error `check`
// threw, if any: a probe of a process that is still starting may throw meanwhile). Tests use it for
// anything that happens "a moment later" (a message on another socket, a flush, a process exit).
export interface WaitOptions {
  /** Give up after this long (a test that fails must still end). */
  timeoutMs?: number
  /** Time between two checks. */
  intervalMs?: number
}

export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  options: WaitOptions | number = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 15_000, intervalMs = 20 } =
    typeof options === 'number' ? { timeoutMs: options } : options
  const deadline = performance.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (performance.now() > deadline) {
      const why = last ? ` (${(last as Error).message})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
