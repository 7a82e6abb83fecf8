// Forward stage, split QIDO searches: read the elements of a JSON array (a QIDO-RS result, PS3.18
// Annex F) from a byte stream one at a time, so merged results are streamed out and never held
// whole. Memory is bounded by one element (a study, series or instance: a few KB).
import type { Readable } from 'node:stream'
import { type EscapeState, stringEnd } from './json-scan.js'

/** The body is not a JSON array (an upstream error page, or something truncated). */
export class NotAJsonArray extends Error {
  override readonly name = 'NotAJsonArray'
}

/** Elements larger than this are refused: no QIDO result row is anywhere near it. */
const MAX_ELEMENT = 16 * 1024 * 1024

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

/**
 * The raw bytes of each element of the top-level JSON array in `body`, in order. Throws
 * NotAJsonArray when the body is not one (or ends early).
 */
export async function* arrayElements(body: AsyncIterable<Buffer> | Readable): AsyncGenerator<Buffer> {
  let state: 'before' | 'between' | 'element' | 'after' = 'before'
  let inString = false
  const escapes: EscapeState = { escaped: false }
  let depth = 0 // nesting inside the current element
  let scalar = false // the element is a number or literal (ends at , ] or whitespace)
  let parts: Buffer[] = []
  let size = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const n = chunk.length
    let from = 0 // where the current element's bytes in this chunk start
    const out: Buffer[] = []
    const finish = (end: number) => {
      parts.push(chunk.subarray(from, end))
      out.push(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts))
      parts = []
      size = 0
      state = 'between'
    }
    let i = 0
    while (i < n) {
      if (inString) {
        const end = stringEnd(chunk, i, escapes)
        if (end === -1) break
        inString = false
        i = end + 1
        if (depth === 0) finish(i) // a string element
        continue
      }
      const b = chunk[i] as number
      if (state === 'element') {
        if (scalar) {
          if (b === 0x2c || b === 0x5d || isSpace(b)) finish(i)
          else i++
          continue
        }
        if (b === 0x22) inString = true
        else if (b === 0x7b || b === 0x5b) depth++
        else if ((b === 0x7d || b === 0x5d) && --depth === 0) finish(i + 1)
        i++
        continue
      }
      if (isSpace(b)) {
        i++
        continue
      }
      if (state === 'before') {
        if (b !== 0x5b) throw new NotAJsonArray('not an array')
        state = 'between'
      } else if (state === 'after') {
        throw new NotAJsonArray('bytes after the array')
      } else if (b === 0x5d) {
        state = 'after'
      } else if (b !== 0x2c) {
        // An element's first byte.
        state = 'element'
        from = i
        depth = 0
        scalar = b !== 0x7b && b !== 0x5b && b !== 0x22
        if (!scalar) continue // read it again as part of the element
      }
      i++
    }
    if (state === 'element') {
      parts.push(chunk.subarray(from))
      size += n - from
      if (size > MAX_ELEMENT) throw new NotAJsonArray('an element is too large')
    }
    yield* out
  }
  if (state !== 'after') throw new NotAJsonArray('the array does not end')
}
