// The endpoints tokengate answers itself on the public listener, ahead of the mounts: the OAuth
// token endpoint (`oauth.tokenPath`) and self-service tokens (`<mount>/tokens`, when
// `selfService.enabled`). server/pipeline.ts asks `match(rawUrl)` first; anything else (null) goes
// through the stages as usual. Matching is a few `startsWith` on the raw URL: no allocation on the
// proxied hot path.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TokenAdmin } from '../admin/tokens.js'
import type { Config } from '../config/schema.js'
import type { SecretPolicy } from '../credential/secret.js'
import { GateError } from '../errors.js'
import type { CompiledRoutes } from '../route/compile.js'
import { isConnectionError } from '../token/redis-client.js'
import { storeError } from '../token/redis-store.js'
import type { TokenStore } from '../token/store.js'
import { handleTokenRequest } from './oauth-endpoint.js'
import { handleSelfService } from './self-service.js'

export type LocalHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>

export interface LocalEndpoints {
  /** The handler for this request target, or null when it is not one of tokengate's own. */
  match(rawUrl: string): LocalHandler | null
}

export interface LocalEndpointDeps {
  admin: TokenAdmin
  store: Pick<TokenStore, 'lookup' | 'isAlbumMember'>
  secrets: SecretPolicy
  now: () => number
}

interface Entry {
  path: string
  /** For `<path>` itself (query allowed). */
  exact: LocalHandler
  /** For `<path>/…`: the handler given the rest. */
  below?: (rest: string) => LocalHandler
}

const QUESTION = 63
const SLASH = 47

/** The local endpoints of one config (rebuilt on reload). */
export function localEndpoints(
  config: Pick<Config, 'oauth' | 'selfService'>,
  routes: CompiledRoutes,
  deps: LocalEndpointDeps,
): LocalEndpoints {
  const entries: Entry[] = []
  if (config.oauth.enabled) {
    const oauth = { admin: deps.admin, reuseWindow: config.oauth.reuseWindow }
    entries.push({
      path: config.oauth.tokenPath,
      exact: guarded((req, res) => handleTokenRequest(req, res, oauth)),
    })
  }
  if (config.selfService.enabled) {
    const self = { ...deps, maxLifetime: config.selfService.maxLifetime }
    const only = new Set(config.selfService.mounts.map((m) => (m === '/' ? '' : m.replace(/\/+$/, ''))))
    for (const mount of routes.mounts) {
      if (only.size && !only.has(mount.prefix)) continue
      entries.push({
        path: `${mount.prefix}/tokens`,
        exact: guarded((req, res) => handleSelfService(req, res, '', self)),
        below: (rest) => guarded((req, res) => handleSelfService(req, res, rest, self)),
      })
    }
  }
  // Longest first, as mounts: `/api/x/tokens` before `/api/tokens`… never ambiguous, but cheap.
  entries.sort((a, b) => b.path.length - a.path.length)
  return {
    match(rawUrl) {
      for (const e of entries) {
        if (!rawUrl.startsWith(e.path)) continue
        const next = rawUrl.charCodeAt(e.path.length)
        if (Number.isNaN(next) || next === QUESTION) return e.exact
        if (next === SLASH && e.below) return e.below(rawUrl.slice(e.path.length))
      }
      return null
    },
  }
}

/** Redis failures inside the token operations answer 503, as a failed lookup does; bugs stay bugs. */
function guarded(handler: LocalHandler): LocalHandler {
  return async (req, res) => {
    try {
      await handler(req, res)
    } catch (err) {
      if (!(err instanceof GateError) && isConnectionError(err)) throw storeError(err)
      throw err
    }
  }
}
