// Property-based: credential extraction (credential/extract.ts) after route matching. For any mix
// of Authorization headers, link prefix and query: a Credential or a 4xx GateError, never a throw
// of anything else; the answer (status, headers, body) and the error's message never carry a
// secret; the hash returned is the hash of a secret the request carried; the log path is redacted.
import fc from 'fast-check'
import t from 'tap'
import { configSchema } from '../../src/config/schema.js'
import { extractCredential } from '../../src/credential/extract.js'
import { hashSecret, loggablePath, mintSecret, type SecretPolicy } from '../../src/credential/secret.js'
import { GateError, toHttpError } from '../../src/errors.js'
import { compileRoutes } from '../../src/route/compile.js'
import { matchRoute } from '../../src/route/match.js'
import { params, pathArb, queryArb, RUNS } from './arbitraries.js'

const routes = compileRoutes(
  configSchema.parse({ mounts: [{ path: '/api', upstream: 'http://pacs/dicom-web' }] }),
)
const policies: SecretPolicy[] = [
  { prefix: 'tg_', allowLegacy: true },
  { prefix: 'tg_', allowLegacy: false },
]
const SECRETS = [mintSecret('tg_'), mintSecret('tg_'), 'legacy-token-0123456789', 'tg_short']

const secretArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SECRETS) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(...SECRETS).map((s) => s.slice(0, -1)) },
)
const authArb = fc.oneof(
  secretArb.map((s) => `Bearer ${s}`),
  secretArb.map((s) => `bEaReR   ${s}  `),
  fc
    .tuple(fc.string({ maxLength: 8 }), secretArb)
    .map(([u, s]) => `Basic ${Buffer.from(`${u}:${s}`).toString('base64')}`),
  fc.string({ maxLength: 30 }).map((s) => `Basic ${s}`),
  fc.string({ maxLength: 30 }),
  fc.constantFrom('Bearer', 'Bearer ', 'Basic', 'Digest x', ''),
)
const linkArb = fc.option(
  fc.oneof(secretArb.map(encodeURIComponent), secretArb, fc.constantFrom('', '%zz', '%', '..')),
)

function containsSecret(text: string, secrets: readonly string[]): string | undefined {
  return secrets.find((s) => s.length >= 6 && text.includes(s))
}

t.test(`any request yields a credential or a 4xx that names no secret (${RUNS} runs)`, async (t) => {
  fc.assert(
    fc.property(
      fc.array(authArb, { maxLength: 3 }),
      linkArb,
      pathArb,
      fc.option(
        fc.oneof(
          queryArb,
          secretArb.map((s) => `x=${s}`),
        ),
      ),
      fc.constantFrom(...policies),
      (auths, link, path, query, policy) => {
        const rawUrl = `/api${link === null ? '' : `/link/${link}`}${path}${query === null ? '' : `?${query}`}`
        // What the gate reads as the link secret: the segment up to the next `/` or the query.
        const linkSecret = link === null ? null : (link.split(/[/?]/)[0] as string)
        const carried = [
          ...SECRETS,
          ...auths.map((a) => a.replace(/^\s*\S+\s*/, '').trim()),
          ...(linkSecret === null ? [] : [linkSecret, decodeSafe(linkSecret)]),
        ].filter((s) => s.length >= 6)
        const rawHeaders = ['Host', 'gate']
        for (const a of auths) rawHeaders.push('Authorization', a)
        const headers = auths[0] === undefined ? { host: 'gate' } : { host: 'gate', authorization: auths[0] }
        let error: unknown
        try {
          const route = matchRoute(routes, 'GET', rawUrl)
          const cred = extractCredential({ headers, rawHeaders, rawUrl }, route, policy)
          const candidates = new Set(
            [
              ...auths.map((a) => a.trim().split(/\s+/).slice(1).join(' ')),
              ...auths.flatMap(basicPassword),
              ...(linkSecret === null ? [] : [decodeSafe(linkSecret)]),
            ].map(hashSecret),
          )
          if (!candidates.has(cred.hash)) throw new Error('hash of a secret the request did not carry')
          return
        } catch (err) {
          error = err
        }
        if (!(error instanceof GateError)) throw error
        const answer = toHttpError(error)
        if (answer.status >= 500) throw new Error(`5xx: ${error.reason}`)
        const shown = JSON.stringify(answer) + error.message
        const leaked = containsSecret(shown, carried)
        if (leaked) throw new Error(`the answer names a secret: ${shown}`)
        const logged = containsSecret(loggablePath(rawUrl), linkSecret === null ? [] : [linkSecret])
        if (logged) throw new Error(`the log path keeps the link secret: ${loggablePath(rawUrl)}`)
      },
    ),
    params,
  )
  t.pass()
})

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

function basicPassword(a: string): string[] {
  const m = /^\s*basic\s+(\S+)\s*$/i.exec(a)
  if (!m) return []
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon === -1 ? [] : [decoded.slice(colon + 1)]
}
