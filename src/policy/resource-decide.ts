// Decide stage, `api` tokens (issue 13, Thinger.io-style permission profiles): on a mount with
// `resources`, a request is allowed when one of the token's grants covers the resource type, the
// `{id}` captured (or `*`) and the action, and its attributes equal every `{attr.NAME}` the path
// bound. Resource mounts admit api tokens only, and api tokens reach nothing else: neither kind
// of permission stands in for the other. No I/O: grants were parsed when the record was read.
import { Forbidden } from '../errors.js'
import type { RouteMatch } from '../route/match.js'
import { type TokenRecord, tokenAttr } from '../token/record.js'
import { grantsAllow } from './grants.js'

/** Return when the api token may make this request on a resource mount; else throw Forbidden (403). */
export function authorizeResource(record: TokenRecord, route: RouteMatch): void {
  const resource = route.resource
  if (record.kind !== 'api' || !resource) throw new Forbidden('wrong_kind', record.id)
  const grants = record.grants
  // A malformed grants field fails closed; the admin can still rewrite it (admin/grants-ops.ts).
  if (!grants) throw new Forbidden('bad_grants', record.id)
  if (!grantsAllow(grants, resource.type, resource.id, resource.action)) {
    throw new Forbidden('no_grant', record.id)
  }
  for (const [name, value] of resource.attrs) {
    if (tokenAttr(record, name) !== value) throw new Forbidden('attr_mismatch', record.id)
  }
}
