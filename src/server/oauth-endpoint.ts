// The OAuth 2.0 token endpoint (RFC 6749 §6, refresh only; `oauth.tokenPath`, default
// /oauth/token), answered by tokengate itself on the public listener, never forwarded. Reads the
// small form body (capped), checks it as §4.1.3/§6 say, and lets admin/refresh.ts rotate the
// refresh token and mint the access token. Refusals are thrown as the OAuth GateErrors (errors.ts
// maps them to §5.2's codes); no answer ever echoes a secret.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sendJson } from '../admin/api-http.js'
import { isClientId } from '../admin/refresh.js'
import type { TokenAdmin } from '../admin/tokens.js'
import { OAuthInvalidClient, OAuthInvalidRequest, OAuthUnsupportedGrantType } from '../errors.js'
import { hasMediaType, readBody } from './read-body.js'

/** A token request is three short parameters: 8 KB is plenty. */
export const TOKEN_BODY_LIMIT = 8 * 1024

export interface TokenEndpointDeps {
  admin: TokenAdmin
  /** `oauth.reuseWindow`. */
  reuseWindow: number
}

/** One parameter, present exactly once and not empty (§3.2: parameters are never repeated; an empty one is absent). */
function param(form: URLSearchParams, name: string): string | undefined {
  const values = form.getAll(name)
  if (values.length > 1) throw new OAuthInvalidRequest('bad_form')
  return values[0] || undefined
}

export async function handleTokenRequest(
  req: IncomingMessage,
  res: ServerResponse,
  deps: TokenEndpointDeps,
): Promise<void> {
  // §5.1 / §5.2: every answer of the token endpoint, errors too, is not to be cached.
  res.setHeader('cache-control', 'no-store')
  res.setHeader('pragma', 'no-cache')
  if (req.method !== 'POST' || !hasMediaType(req, 'application/x-www-form-urlencoded'))
    throw new OAuthInvalidRequest('bad_form')
  const form = new URLSearchParams((await readBody(req, TOKEN_BODY_LIMIT)).toString('utf8'))
  const grantType = param(form, 'grant_type')
  if (grantType === undefined) throw new OAuthInvalidRequest('bad_form')
  if (grantType !== 'refresh_token') throw new OAuthUnsupportedGrantType('grant_type_unsupported')
  const refreshToken = param(form, 'refresh_token')
  const clientId = param(form, 'client_id')
  if (refreshToken === undefined || clientId === undefined) throw new OAuthInvalidRequest('bad_form')
  if (!isClientId(clientId)) throw new OAuthInvalidClient('client_mismatch')
  const admin = deps.admin.withActor({ name: `oauth:${clientId}`, client: req.socket.remoteAddress ?? '' })
  const out = await admin.refresh.refresh(refreshToken, clientId, deps.reuseWindow)
  sendJson(res, 200, {
    access_token: out.accessToken,
    token_type: 'Bearer',
    expires_in: out.expiresIn,
    refresh_token: out.refreshToken,
  })
}
