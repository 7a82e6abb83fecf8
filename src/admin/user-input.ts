// Admin input, users (`tokengate user add|set`, admin API `/users`): the one schema both take, and
// the checks with no I/O. A user record holds a display name, an email, attributes the user's
// tokens inherit, and an optional validity end (DataChain: past it, every token is refused).
import { z } from 'zod'
import { parseIsoDate } from '../config/duration.js'
import { LAST_DATE } from '../token/record.js'
import { checkAttrs } from './attrs-input.js'
import { AdminInputError } from './input-error.js'

/** `user add` / `user set` input; `validUntil: null` (CLI `--valid-until none`) clears it. */
export const userSchema = z.strictObject({
  name: z.string().optional(),
  email: z.string().optional(),
  /** Attributes; on `set`, merged over the stored ones (an empty value removes one). */
  attrs: z.record(z.string(), z.string()).optional(),
  /** ISO 8601 date, ms since the epoch, or null for none. */
  validUntil: z.union([z.string(), z.number(), z.null()]).optional(),
})

export type UserInput = z.infer<typeof userSchema>

/** The body fields the schema takes. */
export const USER_FIELDS = Object.keys(userSchema.shape)

/** Checked user fields; absent ones were not given. `validUntil` 0 clears it. */
export interface ValidUser {
  name?: string
  email?: string
  attrs?: Record<string, string>
  validUntil?: number
}

const MAX_NAME = 256
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
// Deliberately loose (RFC 5322 is not the point): one @, no spaces, a dot-free local part is fine.
const EMAIL = /^[^\s@]+@[^\s@]+$/

/** Every check `user add` / `user set` make with no I/O. */
export function validateUser(input: UserInput): ValidUser {
  const out: ValidUser = {}
  if (input.name !== undefined) {
    if (input.name.length > MAX_NAME || CONTROL.test(input.name))
      throw new AdminInputError(
        `--name must be at most ${MAX_NAME} characters without control characters`,
        'name',
      )
    out.name = input.name
  }
  if (input.email !== undefined) {
    if (input.email !== '' && (input.email.length > 254 || !EMAIL.test(input.email)))
      throw new AdminInputError(
        `--email "${input.email.replace(CONTROL, '?')}" is not an email address`,
        'email',
      )
    out.email = input.email
  }
  if (input.attrs !== undefined) out.attrs = checkAttrs(input.attrs)
  if (input.validUntil !== undefined) out.validUntil = resolveValidUntil(input.validUntil)
  return out
}

/** `--valid-until`: an ISO date or ms since the epoch; `none` / null clears it (0). */
export function resolveValidUntil(value: string | number | null): number {
  if (value === null || value === 'none') return 0
  const at = typeof value === 'number' ? value : parseIsoDate(value)
  if (at === undefined || !Number.isSafeInteger(at) || at <= 0 || at > LAST_DATE)
    throw new AdminInputError(
      `--valid-until "${String(value)}" is not a date; give an ISO date like 2027-01-31, or none`,
      'validUntil',
    )
  return at
}
