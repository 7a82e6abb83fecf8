// The two ways an administrative request is refused for what it asks (not for a failure): its own
// module so tokens.ts, audit.ts, the CLI and the admin API share them without importing each other
// in a circle. The CLI prints the message and exits 2; the API answers 400 (or 404) with it.

/** A request the administrator must change: the message says what to change. */
export class AdminInputError extends Error {
  /** The input it is about (`album`, `expires`, …), for an API to point at; absent when general. */
  readonly field: string | undefined
  constructor(message: string, field?: string) {
    super(message)
    this.name = new.target.name
    this.field = field
  }
}

/** No token with that id (never created, or expired out of Redis after its grace period). */
export class AdminNotFound extends AdminInputError {}
