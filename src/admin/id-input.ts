// Admin input, ids: album, user, tenant and token ids as the CLI and the admin API take them,
// checked against token/ids.ts (the rule the proxy applies too) before anything touches Redis, with
// a message that names what is wrong and the rule.
import { ID_PATTERN, ID_RULE_TEXT, TOKEN_ID_PATTERN, TOKEN_ID_RULE_TEXT } from '../token/ids.js'
import { AdminInputError } from './input-error.js'

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

interface IdRule {
  max: number
  /** One allowed character. */
  char: RegExp
  pattern: RegExp
  text: string
}
const ALBUM_OR_USER: IdRule = { max: 128, char: /[A-Za-z0-9._@+-]/, pattern: ID_PATTERN, text: ID_RULE_TEXT }
const TOKEN_ID: IdRule = {
  max: 64,
  char: /[A-Za-z0-9._-]/,
  pattern: TOKEN_ID_PATTERN,
  text: TOKEN_ID_RULE_TEXT,
}

/** Check an id against token/ids.ts's rule, with a message naming what is wrong and the rule. */
function checkId(value: unknown, what: string, field: string, rule: IdRule): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new AdminInputError(`${what} must not be empty`, field)
  if (rule.pattern.test(value)) return value
  const shown = value.replace(new RegExp(CONTROL, 'g'), '?')
  if (value.length > rule.max) {
    throw new AdminInputError(
      `${what} is ${value.length} characters long; at most ${rule.max} are allowed (${rule.text})`,
      field,
    )
  }
  const bad = [...value].find((c) => !rule.char.test(c))
  if (bad !== undefined) {
    const named = bad === ':' ? "':'" : `character U+${bad.codePointAt(0)?.toString(16).padStart(4, '0')}`
    throw new AdminInputError(`${what} "${shown}" contains ${named}; use ${rule.text}`, field)
  }
  throw new AdminInputError(`${what} "${shown}" must start with a letter or digit (${rule.text})`, field)
}

/**
 * Check a user, album or tenant id (token/ids.ts: 1–128 characters of A–Z a–z 0–9 . _ @ + -,
 * starting with a letter or digit; so no ':', which `user:<id>` / `album:<id>` invalidation
 * messages would misread). `what` names it in the message (e.g. `--album`).
 */
export function checkName(value: unknown, what: string, field: string): string {
  return checkId(value, what, field, ALBUM_OR_USER)
}

/** Check a public token id (token/ids.ts: 1–64 characters of A–Z a–z 0–9 . _ -). */
export function checkTokenId(value: unknown, what = 'the token id', field = 'id'): string {
  return checkId(value, what, field, TOKEN_ID)
}
