// A Lua script as an ioredis command (defineCommand): EVALSHA, with EVAL on a connection's first
// call and after a NOSCRIPT (a script flush, a failover), so a script's text goes over the wire
// once per connection, not with every call. One helper for every script tokengate runs on its hot
// path or timers (lookup, last used, the failed-auth limiter), typed at the call site.
import type { Cluster, Redis } from 'ioredis'

export interface ScriptDefinition {
  lua: string
  /** Fixed number of keys; absent: the first argument of each call says how many. */
  numberOfKeys?: number
}

/** Define `name` on the client and return its call, bound to it. */
export function defineScript<Args extends (string | number)[], Reply>(
  redis: Redis | Cluster,
  name: string,
  definition: ScriptDefinition,
): (...args: Args) => Promise<Reply> {
  redis.defineCommand(name, definition)
  const command = (redis as unknown as Record<string, (...args: Args) => Promise<Reply>>)[name]
  if (!command) throw new Error(`ioredis did not define ${name}`)
  return command.bind(redis)
}
