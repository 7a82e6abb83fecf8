// Runs a STOW-RS body through the part guard (src/forward/stow-parts.ts) in memory, cut into
// chunks of the given sizes, and reports what came out (what would have gone upstream), which
// parts were admitted, and the error, if any. Shared by the unit and the generated-input tests.
import { type Admit, type PartIdentity, StowGuard } from '../../src/forward/stow-parts.js'

export interface GuardRun {
  out: Buffer
  admitted: PartIdentity[]
  error: unknown
}

export async function runGuard(
  body: Buffer,
  boundary: string,
  admit: Admit,
  chunkSizes: readonly number[] = [body.length || 1],
): Promise<GuardRun> {
  const admitted: PartIdentity[] = []
  const guard = new StowGuard(boundary, async (part) => {
    await admit(part)
    admitted.push(part)
  })
  const out: Buffer[] = []
  guard.on('data', (chunk: Buffer) => out.push(chunk))
  const done = new Promise<unknown>((resolve) => {
    guard.once('end', () => resolve(null))
    guard.once('error', (err) => resolve(err))
  })
  let at = 0
  let i = 0
  while (at < body.length && !guard.destroyed) {
    const size = Math.max(1, chunkSizes[i++ % chunkSizes.length] ?? 1)
    const chunk = body.subarray(at, at + size)
    at += size
    if (!guard.write(chunk)) await Promise.race([new Promise((r) => guard.once('drain', r)), done])
  }
  if (!guard.destroyed) guard.end()
  const error = await done
  return { out: Buffer.concat(out), admitted, error }
}
