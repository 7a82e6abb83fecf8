// Token administration, grant input (issue 13): `--grant` lists read into grants (policy/grants.ts
// spells them), and the grant arithmetic of `token update`: adding actions to a grant, removing
// some or all of them. Pure functions; admin/tokens.ts (create) and admin/grants-ops.ts (update)
// share them, so a grant is read and merged one way.
import { formatGrant, type Grant, GrantSyntaxError, parseGrant } from '../policy/grants.js'
import { AdminInputError } from './input-error.js'

/** Most grants one token carries: a profile, not a database (records stay small and fast to read). */
export const MAX_GRANTS = 256

/** Parse a `--grant` list (one string or several); AdminInputError naming `field` on a bad one. */
export function parseGrantInput(input: string | readonly string[] | undefined, field: string): Grant[] {
  if (input === undefined) return []
  const list = typeof input === 'string' ? [input] : input
  if (list.length > MAX_GRANTS) throw new AdminInputError(`at most ${MAX_GRANTS} grants per token`, field)
  try {
    return list.map((g) => parseGrant(String(g)))
  } catch (err) {
    if (err instanceof GrantSyntaxError) throw new AdminInputError(err.message, field)
    throw err
  }
}

/** Canonical text of each grant. */
export function formatGrants(grants: readonly Grant[]): string[] {
  return grants.map(formatGrant)
}

const keyOf = (g: Grant) => `${g.type}:${g.id}`

/** Grants by type and id, actions merged (`*` absorbs the rest); first-seen order kept. */
function byResource(grants: readonly Grant[]): Map<string, Grant> {
  const out = new Map<string, Grant>()
  for (const g of grants) {
    const had = out.get(keyOf(g))
    const actions = had ? [...had.actions, ...g.actions] : [...g.actions]
    out.set(keyOf(g), {
      type: g.type,
      id: g.id,
      actions: actions.includes('*') ? ['*'] : [...new Set(actions)].sort(),
    })
  }
  return out
}

/** `current` plus `add`: a grant on the same type and id gains the actions. */
export function mergeGrants(current: readonly Grant[], add: readonly Grant[]): Grant[] {
  return [...byResource([...current, ...add]).values()]
}

/**
 * `current` minus `remove`: the actions named leave the grant on that type and id (all of them
 * for `*`); a grant left with none goes. Removing what is not there changes nothing.
 */
export function subtractGrants(current: readonly Grant[], remove: readonly Grant[]): Grant[] {
  const out = byResource(current)
  for (const r of remove) {
    const had = out.get(keyOf(r))
    if (!had) continue
    if (r.actions.includes('*')) {
      out.delete(keyOf(r))
      continue
    }
    if (had.actions.includes('*')) {
      throw new AdminInputError(
        `grant ${formatGrant(had)} allows every action: remove it whole (${had.type}:${had.id}:*) and add the actions to keep`,
        'removeGrant',
      )
    }
    const left = had.actions.filter((a) => !r.actions.includes(a))
    if (left.length) out.set(keyOf(r), { ...had, actions: left })
    else out.delete(keyOf(r))
  }
  return [...out.values()]
}
