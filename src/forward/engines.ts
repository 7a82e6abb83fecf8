// Forward stage, engine choice: `forward.engine` picks the Forwarder implementation. Both satisfy
// the same contract (forwarder.ts) and pass the same streaming, abort and error tests.
import { createForwarder, type Forwarder, type ForwardOptions } from './forwarder.js'
import { createUndiciForwarder } from './undici-forwarder.js'

export function createForwarderFor(opts: ForwardOptions): Forwarder {
  return opts.engine === 'undici' ? createUndiciForwarder(opts) : createForwarder(opts)
}
