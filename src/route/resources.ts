// Route match, resource rules (issue 13, Thinger.io-style profiles): a mount's `resources` compiled
// once per start or reload into ordinary method + path rules that also carry what they bind — the
// resource type, the action, and which captures are the `{id}` and the `{attr.NAME}` values — so
// route/match.ts finds the rule as for any mount and runs one more regex only on the rule it
// matched. The decision (does a grant cover it? does the attribute equal the token's?) is
// policy/resource-decide.ts's.

import { type PathSegment, parseResourcePath } from '../config/resource-path.js'
import type { ACTIONS, ResourcesConfig } from '../config/schema.js'
import { BadRequest } from '../errors.js'
import { percentDecode } from '../rewrite/canonical-query.js'

/** What a matched resource rule binds; kept on the compiled rule. */
export interface ResourceBinding {
  type: string
  action: string
  /** The rule's path regex with a capture group per `{id}` / `{attr.NAME}`. */
  capture: RegExp
  /** Capture group of `{id}`, 0 when the path has none. */
  idGroup: number
  /** `{attr.NAME}` → capture group, in path order. */
  attrGroups: readonly (readonly [string, number])[]
}

/** The resource a request addresses, from the rule it matched. */
export interface ResourceMatch {
  type: string
  action: string
  /** The `{id}` captured (percent-decoded), or `*` when the path names none (only a `*` grant covers it). */
  id: string
  /** `{attr.NAME}` → the value in the path (percent-decoded), which must equal the token's. */
  attrs: readonly (readonly [string, string])[]
}

type RouteAction = (typeof ACTIONS)[number]

/** A resource rule as route/compile.ts keeps every rule (CompiledRule), plus its binding. */
export interface CompiledResourceRule {
  methods: ReadonlySet<string> | null
  pattern: RegExp
  /** Read for GET/HEAD-only rules, else write: never what decides (grants do), a safe default. */
  action: RouteAction
  resource: ResourceBinding
}

const ESCAPE = /[.*+?^${}()|[\]\\]/g

/** `capturing`: a group per `{id}` / `{attr.NAME}` (for binding); without, for the hot loop's test. */
function regexOf(segments: readonly PathSegment[], capturing: boolean): RegExp {
  const bound = capturing ? '/([^/]+)' : '/[^/]+'
  let re = '^'
  for (const seg of segments) {
    if (seg.kind === 'literal') re += `/${seg.text.replace(ESCAPE, '\\$&')}`
    else if (seg.kind === 'one') re += '/[^/]+'
    else if (seg.kind === 'rest') re += '(?:/[^/]*)*'
    else re += bound
  }
  return new RegExp(`${re}/?$`)
}

/** Compile a mount's resources, types and rules in the order written (first match wins). */
export function compileResourceRules(resources: ResourcesConfig): CompiledResourceRule[] {
  const out: CompiledResourceRule[] = []
  for (const [type, rules] of Object.entries(resources)) {
    for (const rule of rules) {
      const segments = parseResourcePath(rule.path)
      // The schema refused these already; a config that skipped it must not compile to "match all".
      if (typeof segments === 'string') throw new Error(`resources.${type}: ${segments}`)
      let group = 0
      let idGroup = 0
      const attrGroups: [string, number][] = []
      for (const seg of segments) {
        if (seg.kind === 'id') idGroup = ++group
        else if (seg.kind === 'attr') attrGroups.push([seg.name, ++group])
      }
      const methods = rule.methods === '*' ? null : new Set<string>(rule.methods)
      const readOnly = methods !== null && [...methods].every((m) => m === 'GET' || m === 'HEAD')
      out.push({
        methods,
        pattern: regexOf(segments, false),
        action: readOnly ? 'read' : 'write',
        resource: { type, action: rule.action, capture: regexOf(segments, true), idGroup, attrGroups },
      })
    }
  }
  return out
}

const NO_ATTRS: ResourceMatch['attrs'] = Object.freeze([])

const badPath = () => new BadRequest('bad_path')

/** A bound segment as the upstream reads it (percent-decoded). */
function decoded(raw: string): string {
  return percentDecode(raw, badPath)
}

/**
 * The resource `subPath` addresses under the rule that matched it. Values are percent-decoded,
 * as the upstream will read them (`device%34%32` is `device42`); an undecodable one is 400.
 */
export function bindResource(binding: ResourceBinding, subPath: string): ResourceMatch {
  const m = binding.capture.exec(subPath)
  // The caller matched `pattern` (same regex without groups); no match here would be a bug.
  if (!m) throw new Error('resource rule matched without its captures')
  const id = binding.idGroup ? decoded(m[binding.idGroup] as string) : '*'
  const attrs = binding.attrGroups.length
    ? binding.attrGroups.map(([name, g]) => [name, decoded(m[g] as string)] as const)
    : NO_ATTRS
  return { type: binding.type, action: binding.action, id, attrs }
}
