// For unit tests of the admin input rules: the AdminInputError a check throws.
import { AdminInputError } from '../../src/admin/input-error.js'

/** The AdminInputError `fn` throws (or a failure when it throws nothing or something else). */
export function refusal(fn: () => unknown): AdminInputError {
  try {
    fn()
  } catch (err) {
    if (err instanceof AdminInputError) return err
    throw err
  }
  throw new Error('expected an AdminInputError')
}
