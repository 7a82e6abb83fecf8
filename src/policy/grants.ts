// Permission grants of `api` tokens (Thinger.io-style token profiles): each grant names a resource
// type, one resource id or `*` (all of that type), and the actions allowed on it, or `*`. The
// text form is what the CLI takes (`--grant device:device42:AccessDeviceResources,GetDeviceStats`,
// `--grant bucket:*:ReadBucket`, `--grant admin`) and what the Redis record stores (a JSON array of
// these strings), so there is one spelling everywhere.

/** One grant. `admin` is `{ type: '*', id: '*', actions: ['*'] }`. */
export interface Grant {
  /** Resource type as declared under a mount's `resources`, or `*`. */
  type: string
  /** One resource id, or `*` for every resource of the type. */
  id: string
  /** Allowed action names, or `['*']` for all. */
  actions: readonly string[]
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/

/** A grant string that cannot be read; the message says what to change. */
export class GrantSyntaxError extends Error {}

/** Parse one grant string (`type:id:action[,action…]` or `admin`). Throws GrantSyntaxError. */
export function parseGrant(text: string): Grant {
  const s = text.trim()
  if (s === 'admin' || s === '*:*:*') return { type: '*', id: '*', actions: ['*'] }
  const parts = s.split(':')
  if (parts.length !== 3)
    throw new GrantSyntaxError(
      `grant "${s}" must be TYPE:ID:ACTION[,ACTION…] (ID or ACTION may be *), or admin`,
    )
  const [type, id, actionList] = parts as [string, string, string]
  if (type !== '*' && !NAME.test(type))
    throw new GrantSyntaxError(`grant "${s}": bad resource type "${type}"`)
  if (id !== '*' && !NAME.test(id)) throw new GrantSyntaxError(`grant "${s}": bad resource id "${id}"`)
  const actions = [...new Set(actionList.split(',').map((a) => a.trim()))].filter(Boolean)
  if (actions.length === 0) throw new GrantSyntaxError(`grant "${s}" names no action`)
  for (const a of actions)
    if (a !== '*' && !NAME.test(a)) throw new GrantSyntaxError(`grant "${s}": bad action "${a}"`)
  return { type, id, actions: actions.includes('*') ? ['*'] : actions.sort() }
}

/** The canonical text form of a grant (inverse of parseGrant). */
export function formatGrant(g: Grant): string {
  if (g.type === '*' && g.id === '*' && g.actions.includes('*')) return 'admin'
  return `${g.type}:${g.id}:${g.actions.join(',')}`
}

/** The Redis field form: a JSON array of canonical grant strings ('' when none). */
export function serializeGrants(grants: readonly Grant[]): string {
  return grants.length ? JSON.stringify(grants.map(formatGrant)) : ''
}

/** Read the Redis field form; a malformed field yields null (the caller fails closed). */
export function deserializeGrants(field: string | undefined): Grant[] | null {
  if (!field) return []
  try {
    const list: unknown = JSON.parse(field)
    if (!Array.isArray(list)) return null
    return list.map((x) => parseGrant(String(x)))
  } catch {
    return null
  }
}

/** True when some grant covers `type`, resource `id` and `action`. */
export function grantsAllow(grants: readonly Grant[], type: string, id: string, action: string): boolean {
  for (const g of grants) {
    if (g.type !== '*' && g.type !== type) continue
    if (g.id !== '*' && g.id !== id) continue
    if (g.actions[0] === '*' || g.actions.includes(action)) return true
  }
  return false
}
