// The error catalog: every GateError subclass, and toHttpError(), the one place that maps an
// error to an HTTP status, body and headers (DESIGN §5). Stages throw these; only
// server/pipeline.ts catches them. The client sees `error` and a fixed message; `reason` is
// for logs and metrics (a closed union, bounded cardinality, never a secret).

/** Stable codes, one per class; docs/errors.md lists them and a test keeps both in sync. */
export type ErrorCode =
  | 'ROUTE_NOT_FOUND'
  | 'BAD_REQUEST'
  | 'MALFORMED_CREDENTIAL'
  | 'AMBIGUOUS_CREDENTIAL'
  | 'AMBIGUOUS_REQUEST'
  | 'MISSING_CREDENTIAL'
  | 'INVALID_TOKEN'
  | 'FORBIDDEN'
  | 'OUT_OF_SCOPE'
  | 'NOT_ACCEPTABLE'
  | 'STORE_UNAVAILABLE'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'OAUTH_INVALID_REQUEST'
  | 'OAUTH_UNSUPPORTED_GRANT_TYPE'
  | 'OAUTH_INVALID_GRANT'
  | 'OAUTH_INVALID_CLIENT'
  | 'TOO_MANY_FAILURES'
  | 'REQUEST_TIMEOUT'
  | 'NEEDS_PROXY'

/** Every internal reason of every class: a closed list (metric labels are pre-bound from it). */
export const REASONS = {
  ROUTE_NOT_FOUND: ['no_mount', 'no_rule'],
  BAD_REQUEST: [
    'bad_path',
    'conflicting_scope',
    'bad_query',
    'bad_body',
    'bad_input',
    'expiry_too_long',
    'body_not_allowed',
    'bad_id',
    'bad_multipart',
    'bad_dicom',
    'dicom_header_too_large',
    'bad_original',
  ],
  MALFORMED_CREDENTIAL: ['bad_scheme', 'bad_base64', 'empty_secret', 'bad_link', 'secret_in_query'],
  AMBIGUOUS_CREDENTIAL: ['two_credentials'],
  AMBIGUOUS_REQUEST: [
    'reserved_spelling',
    'repeated_param',
    'query_separator',
    'fragment',
    'control_char',
    'non_ascii',
    'double_encoding',
    'bad_escape',
    'dot_segment',
    'path_parameter',
    'empty_segment',
    'two_originals',
  ],
  MISSING_CREDENTIAL: ['none'],
  INVALID_TOKEN: ['unknown', 'expired', 'revoked', 'disabled', 'bad_checksum', 'user_inactive'],
  FORBIDDEN: [
    'missing_perm',
    'inbox_refused',
    'study_level_only',
    'wrong_kind',
    'no_grant',
    'attr_mismatch',
    'bad_grants',
    'cannot_mint',
    'perms_too_wide',
  ],
  OUT_OF_SCOPE: [
    'album_not_allowed',
    'not_album_member',
    'study_not_in_scope',
    'not_own_token',
    'upstream_not_found',
  ],
  NOT_ACCEPTABLE: ['zip_unsupported'],
  STORE_UNAVAILABLE: ['redis_error', 'redis_timeout'],
  UPSTREAM_UNAVAILABLE: ['econnrefused', 'econnreset', 'bad_response', 'tls'],
  UPSTREAM_TIMEOUT: ['connect', 'headers', 'body'],
  CONFLICT: ['foreign_study'],
  PAYLOAD_TOO_LARGE: ['body_too_large'],
  OAUTH_INVALID_REQUEST: ['bad_form'],
  OAUTH_UNSUPPORTED_GRANT_TYPE: ['grant_type_unsupported'],
  OAUTH_INVALID_GRANT: ['grant_unknown', 'grant_expired', 'grant_revoked', 'grant_reused', 'grant_refused'],
  OAUTH_INVALID_CLIENT: ['client_mismatch'],
  TOO_MANY_FAILURES: ['auth_failures'],
  REQUEST_TIMEOUT: ['upload_too_slow'],
  NEEDS_PROXY: [
    'split_search',
    'empty_search',
    'stow_record',
    'study_set_change',
    'archive_check',
    'needs_rewrite',
  ],
} as const satisfies Record<ErrorCode, readonly string[]>

export type RouteNotFoundReason = (typeof REASONS.ROUTE_NOT_FOUND)[number]
export type BadRequestReason = (typeof REASONS.BAD_REQUEST)[number]
export type MalformedCredentialReason = (typeof REASONS.MALFORMED_CREDENTIAL)[number]
export type AmbiguousCredentialReason = (typeof REASONS.AMBIGUOUS_CREDENTIAL)[number]
export type AmbiguousRequestReason = (typeof REASONS.AMBIGUOUS_REQUEST)[number]
export type MissingCredentialReason = (typeof REASONS.MISSING_CREDENTIAL)[number]
export type InvalidTokenReason = (typeof REASONS.INVALID_TOKEN)[number]
export type ForbiddenReason = (typeof REASONS.FORBIDDEN)[number]
export type OutOfScopeReason = (typeof REASONS.OUT_OF_SCOPE)[number]
export type NotAcceptableReason = (typeof REASONS.NOT_ACCEPTABLE)[number]
export type StoreUnavailableReason = (typeof REASONS.STORE_UNAVAILABLE)[number]
export type UpstreamUnavailableReason = (typeof REASONS.UPSTREAM_UNAVAILABLE)[number]
export type UpstreamTimeoutReason = (typeof REASONS.UPSTREAM_TIMEOUT)[number]
export type ConflictReason = (typeof REASONS.CONFLICT)[number]
export type PayloadTooLargeReason = (typeof REASONS.PAYLOAD_TOO_LARGE)[number]
export type OAuthInvalidRequestReason = (typeof REASONS.OAUTH_INVALID_REQUEST)[number]
export type OAuthUnsupportedGrantTypeReason = (typeof REASONS.OAUTH_UNSUPPORTED_GRANT_TYPE)[number]
export type OAuthInvalidGrantReason = (typeof REASONS.OAUTH_INVALID_GRANT)[number]
export type OAuthInvalidClientReason = (typeof REASONS.OAUTH_INVALID_CLIENT)[number]
export type TooManyFailuresReason = (typeof REASONS.TOO_MANY_FAILURES)[number]
export type RequestTimeoutReason = (typeof REASONS.REQUEST_TIMEOUT)[number]
export type NeedsProxyReason = (typeof REASONS.NEEDS_PROXY)[number]

export type Reason =
  | RouteNotFoundReason
  | BadRequestReason
  | MalformedCredentialReason
  | AmbiguousCredentialReason
  | AmbiguousRequestReason
  | MissingCredentialReason
  | InvalidTokenReason
  | ForbiddenReason
  | OutOfScopeReason
  | NotAcceptableReason
  | StoreUnavailableReason
  | UpstreamUnavailableReason
  | UpstreamTimeoutReason
  | ConflictReason
  | PayloadTooLargeReason
  | OAuthInvalidRequestReason
  | OAuthUnsupportedGrantTypeReason
  | OAuthInvalidGrantReason
  | OAuthInvalidClientReason
  | TooManyFailuresReason
  | RequestTimeoutReason
  | NeedsProxyReason
  | 'bug'

/** Base of every error a pipeline stage may throw. */
export abstract class GateError<R extends Reason = Reason> extends Error {
  abstract readonly code: ErrorCode
  /** Which case it was: for logs and metrics only, never shown as more than the fixed message. */
  readonly reason: R
  constructor(reason: R, detail?: string) {
    // The detail is for operators' logs; it must never contain a secret (callers pass ids, not tokens).
    super(detail ?? reason)
    this.reason = reason
    this.name = new.target.name
  }
}

export class RouteNotFound extends GateError<RouteNotFoundReason> {
  readonly code = 'ROUTE_NOT_FOUND'
  /** The mount a `no_rule` path fell under (CompiledMount.index), for metrics; -1 for none. */
  mountIndex = -1
}
export class BadRequest extends GateError<BadRequestReason> {
  readonly code = 'BAD_REQUEST'
}
export class MalformedCredential extends GateError<MalformedCredentialReason> {
  readonly code = 'MALFORMED_CREDENTIAL'
}
export class AmbiguousCredential extends GateError<AmbiguousCredentialReason> {
  readonly code = 'AMBIGUOUS_CREDENTIAL'
}
/** A request target two common parsers could read differently (docs/request-rules.md). */
export class AmbiguousRequest extends GateError<AmbiguousRequestReason> {
  readonly code = 'AMBIGUOUS_REQUEST'
}
export class MissingCredential extends GateError<MissingCredentialReason> {
  readonly code = 'MISSING_CREDENTIAL'
}
export class InvalidToken extends GateError<InvalidTokenReason> {
  readonly code = 'INVALID_TOKEN'
}
export class Forbidden extends GateError<ForbiddenReason> {
  readonly code = 'FORBIDDEN'
}
export class OutOfScope extends GateError<OutOfScopeReason> {
  readonly code = 'OUT_OF_SCOPE'
}
export class NotAcceptable extends GateError<NotAcceptableReason> {
  readonly code = 'NOT_ACCEPTABLE'
}
export class StoreUnavailable extends GateError<StoreUnavailableReason> {
  readonly code = 'STORE_UNAVAILABLE'
}
export class UpstreamUnavailable extends GateError<UpstreamUnavailableReason> {
  readonly code = 'UPSTREAM_UNAVAILABLE'
}
export class UpstreamTimeout extends GateError<UpstreamTimeoutReason> {
  readonly code = 'UPSTREAM_TIMEOUT'
}
/** STOW-RS, scoping: studies: a part's study exists in the archive outside the token's scope. */
export class Conflict extends GateError<ConflictReason> {
  readonly code = 'CONFLICT'
}

/** A request body tokengate reads itself (token endpoint, self-service) is over its limit. */
export class PayloadTooLarge extends GateError<PayloadTooLargeReason> {
  readonly code = 'PAYLOAD_TOO_LARGE'
}
// The OAuth 2.0 token endpoint's refusals (RFC 6749 §5.2): one class per `error` code, since each
// has its own status.
export class OAuthInvalidRequest extends GateError<OAuthInvalidRequestReason> {
  readonly code = 'OAUTH_INVALID_REQUEST'
}
export class OAuthUnsupportedGrantType extends GateError<OAuthUnsupportedGrantTypeReason> {
  readonly code = 'OAUTH_UNSUPPORTED_GRANT_TYPE'
}
export class OAuthInvalidGrant extends GateError<OAuthInvalidGrantReason> {
  readonly code = 'OAUTH_INVALID_GRANT'
}
export class OAuthInvalidClient extends GateError<OAuthInvalidClientReason> {
  readonly code = 'OAUTH_INVALID_CLIENT'
}

/**
 * The client address refused too many credentials in the current window (server/auth-limiter.ts):
 * cut until the window ends, whatever it sends.
 */
export class TooManyFailures extends GateError<TooManyFailuresReason> {
  readonly code = 'TOO_MANY_FAILURES'
  constructor(
    reason: TooManyFailuresReason,
    /** Seconds until the window ends (the Retry-After value). */
    readonly retryAfterSeconds: number,
  ) {
    super(reason)
  }
}
/** A request body arrived slower than `listen.minUploadRate` (server/upload-rate.ts). */
export class RequestTimeout extends GateError<RequestTimeoutReason> {
  readonly code = 'REQUEST_TIMEOUT'
}

/**
 * The decision endpoint (server/decision-endpoint.ts) was asked about a request whose plan needs
 * more than headers (a split or empty search, STOW recording, a study-set change): only tokengate
 * as the proxy can carry it out.
 */
export class NeedsProxy extends GateError<NeedsProxyReason> {
  readonly code = 'NEEDS_PROXY'
}

/** Startup only: a config problem, printed with key and line, never an HTTP answer. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly problems: readonly string[] = [message],
  ) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** Startup only: a resource that could not be opened (a port in use…); printed, exit ≠ 0. */
export class StartupError extends Error {
  constructor(
    message: string,
    /** The resource, as opened: `listen 127.0.0.1:8080`, `admin 127.0.0.1:8081`, `metrics …`. */
    readonly what: string,
  ) {
    super(message)
    this.name = 'StartupError'
  }
}

export interface HttpError {
  status: number
  headers: Record<string, string>
  body: { error: string; reason: string }
  /** The reason label for logs/metrics (`bug` for anything unexpected). */
  reason: Reason
}

const REALM = 'Bearer realm="tokengate"'

interface Mapping {
  status: number
  error: string
  /** Fixed client-facing text: the same for every reason of the class, so it is no oracle. */
  message: string
  headers?: Record<string, string>
  /** Whether the client may see which reason it was (only where it reveals nothing). */
  showReason: boolean
}

/** The catalog: code → HTTP answer. docs/errors.md mirrors this table. */
export const ERROR_CATALOG: Readonly<Record<ErrorCode, Mapping>> = {
  ROUTE_NOT_FOUND: { status: 404, error: 'not_found', message: 'no such resource', showReason: false },
  BAD_REQUEST: {
    status: 400,
    error: 'invalid_request',
    message: 'the request is malformed',
    showReason: true,
  },
  MALFORMED_CREDENTIAL: {
    status: 400,
    error: 'invalid_request',
    message: 'the credential is malformed',
    showReason: true,
  },
  AMBIGUOUS_CREDENTIAL: {
    status: 400,
    error: 'invalid_request',
    message: 'more than one credential was sent',
    showReason: true,
  },
  AMBIGUOUS_REQUEST: {
    status: 400,
    error: 'ambiguous_request',
    message: 'the request could be read more than one way',
    showReason: true,
  },
  MISSING_CREDENTIAL: {
    status: 401,
    error: 'unauthorized',
    message: 'a token is required',
    // RFC 6750 §3.1: no error code when the request lacks any authentication information.
    headers: { 'www-authenticate': REALM },
    showReason: false,
  },
  INVALID_TOKEN: {
    status: 401,
    error: 'invalid_token',
    // Unknown, expired, revoked and disabled read the same: no oracle (DESIGN §5).
    message: 'the token is not valid',
    headers: { 'www-authenticate': `${REALM}, error="invalid_token"` },
    showReason: false,
  },
  FORBIDDEN: {
    status: 403,
    error: 'insufficient_scope',
    message: 'the token does not allow this request',
    // RFC 6750 §3.1: insufficient_scope goes with 403.
    headers: { 'www-authenticate': `${REALM}, error="insufficient_scope"` },
    showReason: true,
  },
  OUT_OF_SCOPE: { status: 404, error: 'not_found', message: 'no such resource', showReason: false },
  NOT_ACCEPTABLE: {
    status: 406,
    error: 'not_acceptable',
    message: 'the upstream cannot produce the requested media type',
    showReason: true,
  },
  STORE_UNAVAILABLE: {
    status: 503,
    error: 'service_unavailable',
    message: 'the token store is unavailable',
    headers: { 'retry-after': '1' },
    showReason: false,
  },
  UPSTREAM_UNAVAILABLE: {
    status: 502,
    error: 'bad_gateway',
    message: 'the upstream is unavailable',
    showReason: false,
  },
  UPSTREAM_TIMEOUT: {
    status: 504,
    error: 'gateway_timeout',
    message: 'the upstream did not answer in time',
    showReason: false,
  },
  CONFLICT: {
    status: 409,
    error: 'conflict',
    message: 'the request conflicts with the archive',
    showReason: true,
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    error: 'payload_too_large',
    message: 'the request body is too large',
    showReason: false,
  },
  OAUTH_INVALID_REQUEST: {
    status: 400,
    error: 'invalid_request',
    message: 'the token request is malformed',
    showReason: true,
  },
  OAUTH_UNSUPPORTED_GRANT_TYPE: {
    status: 400,
    error: 'unsupported_grant_type',
    message: 'the grant type is not supported',
    showReason: true,
  },
  OAUTH_INVALID_GRANT: {
    status: 400,
    error: 'invalid_grant',
    // Unknown, expired, revoked and reused read the same: no oracle (DESIGN §5).
    message: 'the refresh token is not valid',
    showReason: false,
  },
  OAUTH_INVALID_CLIENT: {
    status: 401,
    error: 'invalid_client',
    message: 'the client is not the one the refresh token was issued to',
    showReason: false,
  },
  TOO_MANY_FAILURES: {
    status: 429,
    error: 'too_many_requests',
    message: 'too many refused credentials from this address; retry later',
    // Retry-After is set from the error (the seconds left in the window).
    showReason: false,
  },
  REQUEST_TIMEOUT: {
    status: 408,
    error: 'request_timeout',
    message: 'the request body arrived too slowly',
    showReason: false,
  },
  NEEDS_PROXY: {
    status: 501,
    error: 'not_implemented',
    message: 'this request needs tokengate as the proxy',
    showReason: true,
  },
}

const NEEDS_PROXY_TEXT =
  'this request needs more than headers (a split or empty search, a STOW upload, a WADO-URI archive check, a study-set change): send it through tokengate as the proxy, not through the decision endpoint'

/** Client-facing text for the reasons a client may see (400, 403 and 406: they reveal nothing). */
export const VISIBLE_REASON_TEXT: Partial<Record<Reason, string>> = {
  bad_path: 'the path is not allowed (dot segments or encoded separators)',
  conflicting_scope: 'album and inbox cannot be asked for together, nor two different albums',
  bad_query: 'the query string is malformed',
  body_not_allowed: 'GET, HEAD and DELETE requests must not carry a body',
  bad_id: 'an album id is malformed (1–128 characters from A–Z a–z 0–9 . _ @ + -)',
  bad_scheme: 'the Authorization scheme must be Bearer or Basic',
  bad_base64: 'the Basic credential is not valid base64 of user:token',
  empty_secret: 'the token is empty',
  bad_link: 'the /link/<token>/ path is malformed',
  secret_in_query:
    'the token must not appear in the query string; send it as Bearer, Basic or /link/<token>/',
  two_credentials: 'send exactly one credential: Bearer, Basic or /link/<token>/',
  reserved_spelling:
    'a query parameter is spelled like a reserved one (album, inbox, accept, studyUID, seriesUID, objectUID, StudyInstanceUID, 0020000D) but not exactly',
  repeated_param: 'studyUID, seriesUID and objectUID may be given once each',
  query_separator: 'the query must use & alone between parameters; ; and separators inside names are refused',
  fragment: 'the request target must not contain #',
  control_char: 'the request target must not contain NUL or control characters, raw or percent-encoded',
  non_ascii: 'the request target must percent-encode non-ASCII characters as UTF-8',
  double_encoding: 'a path segment, parameter name or reserved value is percent-encoded twice',
  bad_escape: 'the request target has a percent-escape that is not valid UTF-8',
  dot_segment: 'a path segment reads as . or .. to some servers',
  path_parameter: 'path segments must not contain ; (path parameters)',
  empty_segment: 'the path must not contain empty segments (//)',
  missing_perm: 'the token lacks the permission this request needs',
  inbox_refused: 'an album token cannot reach the inbox',
  study_level_only:
    'albums hold whole studies: PUT or DELETE /studies/{uid}, not a series or an instance (the archive itself is never changed)',
  bad_multipart:
    'the STOW-RS body must be multipart/related with one token boundary, parts without Content-Length, delimiters after CRLF and nothing after the close delimiter',
  bad_dicom:
    'every STOW-RS part must be a DICOM Part 10 file in explicit or implicit VR little endian (or an encapsulated syntax) with one well-formed StudyInstanceUID',
  dicom_header_too_large: 'the StudyInstanceUID of a STOW-RS part must be within its first 1 MiB',
  foreign_study:
    "a part belongs to a study that exists in the archive outside this token's scope; nothing of it was stored",
  wrong_kind: 'resource mounts take api tokens, and api tokens reach resource mounts only',
  no_grant: "the token's grants do not cover this action on this resource",
  attr_mismatch: "the path names a value other than the token's attribute",
  bad_grants: "the token's grants cannot be read; ask an administrator to set them again",
  bad_body:
    'send a JSON object (Content-Type: application/json) with only album, perms, expiresIn or expiresAt, and description',
  bad_input:
    'album must be an album id, perms some of read,write,download,appropriate, expiresIn a duration like 7d or expiresAt an ISO date in the future, description at most 1024 characters',
  expiry_too_long: "the expiry is later than the user token's own expiry or than selfService.maxLifetime",
  cannot_mint: 'only a user token can create, list or revoke tokens',
  perms_too_wide: 'the permissions asked for are wider than those of the user token',
  bad_form:
    'POST an application/x-www-form-urlencoded body with grant_type, refresh_token and client_id, each once',
  grant_type_unsupported: 'grant_type must be refresh_token',
  zip_unsupported:
    'this archive cannot produce application/zip; ask for multipart/related; type="application/dicom" instead',
  bad_original:
    'a decision request names its original request by X-Original-Method and X-Original-URI (nginx), X-Forwarded-Method and X-Forwarded-Uri (Traefik), or a path below the endpoint (Envoy); the URI must start with /',
  two_originals:
    'a decision request must name its original request one way only (one shape, each header once)',
  split_search: NEEDS_PROXY_TEXT,
  empty_search: NEEDS_PROXY_TEXT,
  stow_record: NEEDS_PROXY_TEXT,
  study_set_change: NEEDS_PROXY_TEXT,
  archive_check: NEEDS_PROXY_TEXT,
  needs_rewrite:
    'this data plane forwards the request as the client sent it: send the canonical, scoped form (as tokengate forwards it), or use tokengate as the proxy',
}

/** Map anything thrown in the pipeline to the HTTP answer. The only place that knows statuses. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof GateError) {
    const gate = err as GateError<Reason>
    const m = ERROR_CATALOG[gate.code]
    const headers: Record<string, string> = { ...m.headers }
    if (gate instanceof TooManyFailures) headers['retry-after'] = String(gate.retryAfterSeconds)
    return {
      status: m.status,
      headers,
      body: { error: m.error, reason: (m.showReason && VISIBLE_REASON_TEXT[gate.reason]) || m.message },
      reason: gate.reason,
    }
  }
  return {
    status: 500,
    headers: {},
    body: { error: 'internal_error', reason: 'internal error' },
    reason: 'bug',
  }
}

/**
 * Why the admin API (admin/api.ts) refused a request. Its client is an administrator holding the
 * admin key, so unlike the public answers above the body's `reason` says exactly what to change
 * (and `field` which input it is about); only `unauthorized` is said before the key is checked.
 */
export type AdminRefusal =
  | 'unauthorized'
  | 'bad_json'
  | 'invalid_input'
  | 'unknown_token'
  | 'no_route'
  | 'method_not_allowed'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'store_unavailable'
  | 'bug'

/** The admin API's refusals → status, `error` and headers. docs/errors.md ("Admin API") mirrors it. */
export const ADMIN_API_ERRORS: Readonly<
  Record<AdminRefusal, { status: number; error: string; headers?: Record<string, string> }>
> = {
  unauthorized: {
    status: 401,
    error: 'unauthorized',
    headers: { 'www-authenticate': 'Bearer realm="tokengate-admin"' },
  },
  bad_json: { status: 400, error: 'invalid_request' },
  invalid_input: { status: 400, error: 'invalid_request' },
  unknown_token: { status: 404, error: 'not_found' },
  no_route: { status: 404, error: 'not_found' },
  method_not_allowed: { status: 405, error: 'method_not_allowed' },
  body_too_large: { status: 413, error: 'payload_too_large' },
  unsupported_media_type: {
    status: 415,
    error: 'unsupported_media_type',
    headers: { accept: 'application/json' },
  },
  store_unavailable: { status: 503, error: 'service_unavailable', headers: { 'retry-after': '1' } },
  bug: { status: 500, error: 'internal_error' },
}
