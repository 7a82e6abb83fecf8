// Property-based: query parsing and rewriting (rewrite/canonical-query.ts, rewrite/query-scope.ts).
// For any raw query: parsing answers or refuses with a 4xx GateError (never a throw of anything
// else, never a 5xx); when it answers, the query forwarded for each scope, re-read by WHATWG
// URLSearchParams, by Express's qs and by a `;`-splitting, double-decoding parser, carries exactly
// the decided album/inbox and nothing any of them reads as another reserved name; and the
// canonical form is a fixed point.
import fc from 'fast-check'
import t from 'tap'
import type { Decision, Scope } from '../../src/policy/decide.js'
import { nameSkeleton, parseQuery, RESERVED_NAMES } from '../../src/rewrite/canonical-query.js'
import { readScopeRequest, scopeQuery, stripScopeParams } from '../../src/rewrite/query-scope.js'
import {
  params,
  qsNames,
  queryArb,
  RUNS,
  refusedOr,
  scopeLikeNames,
  semicolonNames,
  whatwgNames,
} from './arbitraries.js'

const decision = (scope: Scope): Decision => ({ tokenId: 'tok', user: 'u', scope, perms: new Set() })
const DECISIONS: [Decision, string[]][] = [
  [decision({ kind: 'album', album: 'A1' }), ['album']],
  [decision({ kind: 'user-album', user: 'u', album: 'al+b@1' }), ['album']],
  [decision({ kind: 'inbox', user: 'u' }), ['inbox']],
  [decision({ kind: 'user', user: 'u' }), []],
]
const SCOPE_SKELETONS = ['album', 'inbox']
const RESERVED_SKELETONS = RESERVED_NAMES.map((n) => n.toLowerCase())

t.test(`any raw query is parsed or refused with a 4xx, never anything else (${RUNS} runs)`, async (t) => {
  fc.assert(
    fc.property(queryArb, (raw) => {
      const parsed = refusedOr(() => parseQuery(raw))
      if (parsed) refusedOr(() => readScopeRequest(parsed))
    }),
    params,
  )
  t.pass()
})

t.test(`the forwarded query carries exactly the decided scope for every parser (${RUNS} runs)`, async (t) => {
  fc.assert(
    fc.property(queryArb, fc.constantFrom(...DECISIONS), (raw, [d, scopeNames]) => {
      const parsed = refusedOr(() => parseQuery(raw))
      if (!parsed) return
      const out = scopeQuery(parsed, d)
      // Exactly the decided scope parameter, once, in every reader.
      const seen = scopeLikeNames(out, SCOPE_SKELETONS)
      const want = scopeNames.flatMap((n) => [n, n, n])
      if (JSON.stringify(seen) !== JSON.stringify(want))
        throw new Error(`scope as read: ${JSON.stringify(seen)} from ${JSON.stringify(out)}`)
      const u = new URLSearchParams(out)
      if (d.scope.kind === 'album' || d.scope.kind === 'user-album') {
        if (u.get('album') !== d.scope.album) throw new Error(`album ${u.get('album')}`)
      }
      if (d.scope.kind === 'inbox' && u.get('inbox') !== 'true') throw new Error('inbox')
      // Every name a reader sees that looks reserved is spelled exactly (no second reading).
      for (const name of [...whatwgNames(out), ...qsNames(out), ...semicolonNames(out)]) {
        const skeleton = nameSkeleton(name)
        if (RESERVED_SKELETONS.includes(skeleton) && !(RESERVED_NAMES as readonly string[]).includes(name))
          throw new Error(`${JSON.stringify(name)} reads as reserved in ${JSON.stringify(out)}`)
      }
      if (out.includes(';') || out.includes('#')) throw new Error(`separator in ${out}`)
      // The forwarded query is canonical: parsing it again changes nothing.
      const again = parseQuery(out)
      if (again.text !== out || scopeQuery(again, d) !== out) throw new Error(`not a fixed point: ${out}`)
    }),
    params,
  )
  t.pass()
})

t.test(`studies mode forwards no album or inbox at all (${RUNS} runs)`, async (t) => {
  fc.assert(
    fc.property(queryArb, (raw) => {
      const parsed = refusedOr(() => parseQuery(raw))
      if (!parsed) return
      const out = stripScopeParams(parsed)
      const seen = scopeLikeNames(out, SCOPE_SKELETONS)
      if (seen.length) throw new Error(`${JSON.stringify(seen)} in ${JSON.stringify(out)}`)
    }),
    params,
  )
  t.pass()
})
