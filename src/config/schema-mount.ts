// The config schema of a mount (`mounts[]`): its upstream, route rules or resource rules, upstream
// credentials, CORS and upstream TLS. config/schema.ts puts it in the whole config.
import { z } from 'zod'
import { parseResourcePath } from './resource-path.js'
import { clientTlsChecks, clientTlsFields, httpUrl } from './schema-values.js'

/** The four permissions of DESIGN §3; a route rule names the one a request needs. */
export const ACTIONS = ['read', 'write', 'download', 'appropriate'] as const
export const action = z.enum(ACTIONS)

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/** One rule: method(s) + path pattern (relative to the mount) → the action it needs. First match wins. */
const rule = z.strictObject({
  /** HTTP methods this rule applies to; `*` for any. */
  methods: z.union([z.literal('*'), z.array(z.enum(METHODS)).min(1)]),
  /** Path under the mount (after any /link/<token>/): `*` matches one segment, `**` any number (even none). */
  path: z.string().startsWith('/', 'a rule path starts with "/"'),
  /** The permission the request needs. */
  action,
})
export type RuleConfig = z.infer<typeof rule>

/**
 * DICOMweb defaults (PS3.18): QIDO/WADO reads, STOW writes, DELETE writes, KHEOPS-style
 * `PUT /studies/{uid}` (add to album or inbox) needs `appropriate`, WADO-URI at /wado.
 */
export const DICOMWEB_RULES: RuleConfig[] = [
  { methods: ['PUT'], path: '/studies/*', action: 'appropriate' },
  { methods: ['PUT'], path: '/studies/*/series/*', action: 'appropriate' },
  { methods: ['GET', 'HEAD'], path: '/studies/**', action: 'read' },
  { methods: ['GET', 'HEAD'], path: '/series/**', action: 'read' },
  { methods: ['GET', 'HEAD'], path: '/instances/**', action: 'read' },
  { methods: ['POST'], path: '/studies/**', action: 'write' },
  { methods: ['DELETE'], path: '/studies/**', action: 'write' },
  { methods: ['GET', 'HEAD'], path: '/wado', action: 'read' },
]

/** A resource type or an action: the alphabet grants use (policy/grants.ts). */
const RESOURCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/
const RESOURCE_NAME_TEXT = 'expected a name of letters, digits and . _ @ + - (as grants spell it)'
const resourceName = z.string().regex(RESOURCE_NAME, RESOURCE_NAME_TEXT)

/**
 * One resource rule (issue 13): method(s) + path → the action a grant must allow on the resource
 * the path names. First match wins, across the mount's resource types in the order written.
 */
const resourceRule = z.strictObject({
  /** HTTP methods this rule applies to; `*` for any. */
  methods: z.union([z.literal('*'), z.array(z.enum(METHODS)).min(1)]),
  /**
   * Path under the mount: `{id}` binds the resource id a grant must name (or `*`), `{attr.NAME}`
   * must equal the token's attribute NAME, `*` matches one segment, `**` any rest (last only).
   */
  path: z.string().superRefine((path, ctx) => {
    const parsed = parseResourcePath(path)
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed })
  }),
  /** The action a grant must allow (`GetDeviceStats`), or `*` in the grant for all. */
  action: resourceName,
})
export type ResourceRuleConfig = z.infer<typeof resourceRule>

/** Resource type (`device`) → its rules. Mounts with resources admit `api` tokens only. */
const resources = z.record(z.string(), z.array(resourceRule).min(1)).superRefine((types, ctx) => {
  for (const type of Object.keys(types)) {
    if (!RESOURCE_NAME.test(type))
      ctx.addIssue({ code: 'custom', path: [type], message: `resource type: ${RESOURCE_NAME_TEXT}` })
  }
})
export type ResourcesConfig = z.infer<typeof resources>

const upstreamAuth = z.union([
  z.strictObject({ basic: z.strictObject({ user: z.string(), password: z.string() }) }),
  z.strictObject({ bearer: z.string().min(1) }),
  z.strictObject({ header: z.strictObject({ name: z.string().min(1), value: z.string() }) }),
])

/** A browser origin: scheme, host and port as a browser sends it in `Origin`, no path. */
const origin = z.string().refine((v) => URL.canParse(v) && new URL(v).origin === v.toLowerCase(), {
  message:
    'expected an origin like "https://viewer.example.org" (scheme, host, optional port; no path, no trailing slash) or "*"',
})

/** CORS for browser viewers served from another origin (server/cors.ts). */
const cors = z
  .strictObject({
    /** Origins whose pages may call this mount, e.g. `https://viewer.example.org`; `"*"` for any (only without `credentials`). */
    origins: z.array(z.union([z.literal('*'), origin])).min(1, 'list at least one origin, or "*"'),
    /**
     * Send `Access-Control-Allow-Credentials: true` (pages calling with cookies or
     * `credentials: "include"`). Not needed for a Bearer token the viewer puts in Authorization.
     */
    credentials: z.boolean().default(false),
    /** How long, in seconds, a browser may reuse a preflight answer (`Access-Control-Max-Age`). */
    maxAge: z.number().int().min(0).default(600),
  })
  .superRefine((c, ctx) => {
    if (c.credentials && c.origins.includes('*'))
      ctx.addIssue({
        code: 'custom',
        path: ['origins'],
        message: '"*" is not allowed with credentials: true (browsers refuse it); list the origins',
      })
  })
export type CorsConfig = z.infer<typeof cors>

/** TLS to an upstream (forward/undici-forwarder.ts): a private CA, a client certificate, an SNI name. */
const upstreamTls = z
  .strictObject({
    ...clientTlsFields,
    /** The name sent as SNI and verified against the upstream's certificate (default: the URL's host). */
    servername: z.string().min(1).optional(),
  })
  .superRefine(clientTlsChecks)
export type UpstreamTlsConfig = z.infer<typeof upstreamTls>

const mount = z.strictObject({
  /** Public path prefix, e.g. `/api`. */
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'expected a path like "/api"')
    .transform((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p)),
  /** Where requests under the mount go, e.g. the PACS DICOMweb root `http://127.0.0.1:8042/dicom-web`. */
  upstream: httpUrl,
  /** Where `<mount>/wado` (WADO-URI) goes, e.g. `http://127.0.0.1:8042/wado`. Without it, /wado goes to `upstream`. */
  wado: httpUrl.optional(),
  /**
   * Deprecated, no effect: every forwarded query is now re-encoded with the fewest escapes
   * (`image%2Fjpeg` → `image/jpeg`, which Orthanc 1.10 needs for `contentType`), WADO-URI or not
   * (docs/request-rules.md). Still accepted so existing configs load.
   */
  wadoNormalizeQuery: z.boolean().default(false),
  /** Method + path rules → action. Omitted: the DICOMweb defaults. A path no rule matches is 404. */
  rules: z.array(rule).min(1).optional(),
  /**
   * Permission profiles for any API: resource type → rules binding path variables. A request is
   * allowed when a rule matches it (else 404) and a grant of the `api` token covers its type, the
   * `{id}` it captured and its action (else 403). Replaces `rules` (give one or the other).
   */
  resources: resources.optional(),
  /** Credentials tokengate sends to this upstream (the client's Authorization never goes through). */
  upstreamAuth: upstreamAuth.optional(),
  /**
   * The upstream answers `Accept: application/zip` (a KHEOPS-like archive). Off (the default, and
   * right for Orthanc and most PACS): zip requests get 406 with a reason instead of an upstream error.
   */
  zip: z.boolean().default(false),
  /**
   * Rewrite RetrieveURL and BulkDataURI values in DICOM JSON answers from the upstream's URLs to
   * tokengate's public ones (`publicUrl`, else the request's Host / X-Forwarded-*). Default on.
   */
  rewriteResponseUrls: z.boolean().default(true),
  /**
   * More base URLs the upstream writes into its answers, rewritten like `upstream` (e.g. the
   * `DicomWeb.Host` an Orthanc is configured with, `http://pacs.internal/dicom-web`).
   */
  upstreamAliases: z.array(httpUrl).default([]),
  /**
   * Let browser pages from other origins call this mount (a viewer on its own origin): preflights
   * answered without a credential, CORS headers on every answer, errors included. Off when absent.
   */
  cors: cors.optional(),
  /**
   * TLS to this mount's `https://` upstream (and `wado`): a private CA, mutual TLS, SNI. Applied
   * by a reload (its files re-read): new upstream connections use it, open ones finish first.
   */
  tls: upstreamTls.optional(),
})
export type MountConfig = z.infer<typeof mount>

/** A mount says what a path needs one way: permissions (`rules`) or grants over `resources`. */
export const checkedMount = mount.superRefine((m, ctx) => {
  if (m.tls && !m.upstream.startsWith('https:'))
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls needs an https:// upstream' })
  if (!m.resources) return
  if (m.rules)
    ctx.addIssue({ code: 'custom', path: ['resources'], message: 'give either rules or resources, not both' })
  if (Object.keys(m.resources).length === 0)
    ctx.addIssue({ code: 'custom', path: ['resources'], message: 'name at least one resource type' })
})
