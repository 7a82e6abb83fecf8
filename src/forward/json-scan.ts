// Forward stage, shared by the streaming JSON readers (url-rewriter.ts, json-array.ts): find where
// a JSON string ends inside one chunk, honouring backslash escapes that may straddle chunks.

const QUOTE = 0x22
const BACKSLASH = 0x5c

/** Carried from chunk to chunk: the previous chunk ended inside an escape (`\` was its last byte). */
export interface EscapeState {
  escaped: boolean
}

/** Length of the run of backslashes ending just before `at`, not looking before `from`. */
function backslashesBefore(chunk: Buffer, at: number, from: number): number {
  let k = at - 1
  while (k >= from && chunk[k] === BACKSLASH) k--
  return at - 1 - k
}

/**
 * Index of the quote that ends the string being read at or after `i`, or -1 when it goes on past
 * this chunk (then `state.escaped` says whether the chunk ended inside an escape). indexOf finds
 * quotes; a quote after an odd run of backslashes is escaped.
 */
export function stringEnd(chunk: Buffer, i: number, state: EscapeState): number {
  let j = i
  if (state.escaped) {
    if (j >= chunk.length) return -1
    j++ // the byte after a backslash that ended the previous chunk
    state.escaped = false
  }
  for (;;) {
    const q = chunk.indexOf(QUOTE, j)
    if (q === -1) {
      state.escaped = backslashesBefore(chunk, chunk.length, j) % 2 === 1
      return -1
    }
    if (backslashesBefore(chunk, q, j) % 2 === 0) return q
    j = q + 1
  }
}
