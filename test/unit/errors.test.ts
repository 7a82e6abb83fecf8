// The error catalog and docs/errors.md must agree (the fastify habit): every class, code, status,
// `error`, challenge header and internal reason, and every body text. A change to one without the
// other fails here.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import * as errors from '../../src/errors.js'
import {
  ADMIN_API_ERRORS,
  type AdminRefusal,
  ERROR_CATALOG,
  type ErrorCode,
  GateError,
  InvalidToken,
  REASONS,
  toHttpError,
  VISIBLE_REASON_TEXT,
} from '../../src/errors.js'

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8')

/** The rows of the Markdown table under `## heading`, as arrays of trimmed cells without backticks. */
function table(heading: string): string[][] {
  const section = doc.split(`\n## ${heading}\n`)[1]?.split('\n## ')[0] ?? ''
  return section
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2) // header and separator
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim().replace(/`/g, '')),
    )
}

type GateErrorClass = (new (reason: never) => GateError) & { name: string }
const classes: GateErrorClass[] = (Object.values(errors) as unknown[]).filter(
  (v): v is GateErrorClass => typeof v === 'function' && v.prototype instanceof GateError,
)

t.test('the catalog table lists every class with its code, status, error, headers and reasons', async (t) => {
  const rows = table('Catalog').filter((r) => r[0] !== 'anything else')
  t.equal(rows.length, classes.length, 'one row per GateError class')
  for (const Cls of classes) {
    const code = new Cls('x' as never).code as ErrorCode
    const row = rows.find((r) => r[0] === Cls.name)
    if (!row) {
      t.fail(`${Cls.name} is missing from docs/errors.md`)
      continue
    }
    const m = ERROR_CATALOG[code]
    t.equal(row[1], code, `${Cls.name}: code`)
    t.equal(Number(row[2]), m.status, `${Cls.name}: status`)
    t.equal(row[3], m.error, `${Cls.name}: error`)
    const headers = Object.entries(m.headers ?? {}).map(([k, v]) => `${k}: ${v}`.toLowerCase())
    const documented = row[4] === '—' ? [] : [row[4]?.toLowerCase()]
    t.same(documented, headers, `${Cls.name}: headers`)
    t.same(
      row[5]?.split(',').map((s) => s.trim()),
      [...REASONS[code]],
      `${Cls.name}: reasons`,
    )
  }
  const bug = table('Catalog').find((r) => r[0] === 'anything else')
  t.same([bug?.[2], bug?.[3], bug?.[5]], ['500', 'internal_error', 'bug'])
})

t.test('the reasons table explains every reason, with the body text the client gets', async (t) => {
  const rows = table('Reasons')
  const all = Object.entries(REASONS).flatMap(([code, reasons]) => reasons.map((r) => [code, r] as const))
  t.equal(rows.length, all.length + 1, 'every reason, plus bug')
  for (const [code, reason] of all) {
    const row = rows.find((r) => r[0] === reason)
    const m = ERROR_CATALOG[code as ErrorCode]
    const body = (m.showReason && VISIBLE_REASON_TEXT[reason]) || m.message
    t.equal(row?.[3], body, `${reason}: body text`)
  }
})

t.test('the Admin API table lists every admin refusal with its status, error and headers', async (t) => {
  const rows = table('Admin API')
  t.same(rows.map((r) => r[0]).sort(), Object.keys(ADMIN_API_ERRORS).sort(), 'one row per refusal')
  for (const [refusal, m] of Object.entries(ADMIN_API_ERRORS)) {
    const row = rows.find((r) => r[0] === refusal)
    t.equal(Number(row?.[1]), m.status, `${refusal}: status`)
    t.equal(row?.[2], m.error, `${refusal}: error`)
    const headers = Object.entries(m.headers ?? {}).map(([k, v]) => `${k}: ${v}`)
    const documented = row?.[3] === '—' ? [] : [row?.[3]?.toLowerCase()]
    // 405's Allow depends on the route, so it is documented but not in the static table.
    if (refusal === ('method_not_allowed' satisfies AdminRefusal)) t.match(row?.[3], /^Allow: /)
    else
      t.same(
        documented,
        headers.map((h) => h.toLowerCase()),
        `${refusal}: headers`,
      )
  }
})

t.test(
  'an expired token maps to 401 invalid_token with the RFC 6750 challenge and no reason leak',
  async (t) => {
    const e = toHttpError(new InvalidToken('expired'))
    t.equal(e.status, 401)
    t.equal(e.body.error, 'invalid_token')
    t.equal(e.headers['www-authenticate'], 'Bearer realm="tokengate", error="invalid_token"')
    t.notMatch(e.body.reason, /expired/)
    t.equal(e.reason, 'expired')
  },
)

t.test('anything that is not a GateError is a 500 whose message never reaches the client', async (t) => {
  const e = toHttpError(new Error('secret tg_abc in a stack'))
  t.same([e.status, e.body, e.reason], [500, { error: 'internal_error', reason: 'internal error' }, 'bug'])
})
