// Waiting for a condition instead of sleeping a fixed time: poll `check` until it returns something
// truthy (returned), or fail after the timeout naming what was awaited (and the last error `check`
// threw, if any: a probe of a process that is still starting may throw meanwhile). Tests use it for
// anything that happens "a moment later" (a message on another socket, a flush, a process exit);
// probeUntil for a value that should change, to assert on what was last seen.
export interface WaitOptions {
  /** Give up after this long (a test that fails must still end). */
  timeoutMs?: number
  /** Time between two checks. */
  intervalMs?: number
}

function settings(options: WaitOptions | number): Required<WaitOptions> {
  const { timeoutMs = 15_000, intervalMs = 20 } =
    typeof options === 'number' ? { timeoutMs: options } : options
  return { timeoutMs, intervalMs }
}

export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  options: WaitOptions | number = {},
): Promise<NonNullable<T>> {
  const { timeoutMs, intervalMs } = settings(options)
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

/**
 * Probe until `done` accepts the value, or until the timeout: the last value either way, for the
 * test to assert (its failure then shows what was last seen). For "requests until the answer
 * changes": an invalidation or reconnection takes a moment, longer on a loaded machine.
 */
export async function probeUntil<T>(
  probe: () => T | Promise<T>,
  done: (value: T) => boolean,
  options: WaitOptions | number = {},
): Promise<T> {
  const { timeoutMs, intervalMs } = settings(options)
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (done(value) || performance.now() > deadline) return value
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
