// Waiting for a condition instead of sleeping a fixed time: poll `check` until it returns something
// truthy (returned), or fail after `timeoutMs` naming what was awaited. Tests use it for anything
// that happens "a moment later" (a message on another socket, a flush, a process exit).
export interface WaitOptions {
  /** Give up after this long (a test that fails must still end). */
  timeoutMs?: number
  /** Time between two checks. */
  intervalMs?: number
}

export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 10 }: WaitOptions = {},
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs
  let last: T | undefined
  for (;;) {
    last = await check()
    if (last) return last as NonNullable<T>
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
