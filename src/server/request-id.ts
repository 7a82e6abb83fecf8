// Request ids: the client's `X-Request-Id` when it is a plausible id, else a new UUID. The id is
// logged, returned to the client and forwarded upstream, so it must be short, printable and
// never a secret (an id that looks like one of our tokens is replaced, not logged).
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

const PLAUSIBLE = /^[A-Za-z0-9._:@/+=-]{1,128}$/

export function requestIdOf(req: IncomingMessage, secretPrefix: string): string {
  const given = req.headers['x-request-id']
  if (typeof given === 'string' && PLAUSIBLE.test(given) && !given.includes(secretPrefix)) return given
  return randomUUID()
}
