// Route compilation: mounts and their method+path rules from config → CompiledRoutes, once at
// start (and on reload), so matching a request is a few string compares and one regex test.
import type { Config, MountConfig, RuleConfig } from '../config/schema.js'
import { DICOMWEB_RULES } from '../config/schema.js'
import type { Action } from './match.js'
import { compileResourceRules, type ResourceBinding } from './resources.js'

export interface CompiledRule {
  /** null: any method. */
  methods: ReadonlySet<string> | null
  pattern: RegExp
  action: Action
  /** Resource rules (`mounts[].resources`): what the path binds, for the api-token decision. */
  resource?: ResourceBinding
}

export interface CompiledMount {
  /** Position in CompiledRoutes.mounts (metric label sets are bound per mount by it). */
  index: number
  /** Public prefix without trailing slash (`/api`), or `` for a root mount. */
  prefix: string
  upstream: URL
  /** WADO-URI upstream for `<mount>/wado`; null sends /wado to `upstream`. */
  wado: URL | null
  wadoNormalizeQuery: boolean
  rules: readonly CompiledRule[]
  /** The config entry, for the rewrite stage (upstream credentials) and logs. */
  config: MountConfig
}

export interface CompiledRoutes {
  /** Longest prefix first, so nested mounts resolve to the most specific. */
  mounts: readonly CompiledMount[]
}

/** `*` = one segment, `**` = any number of segments (including none); everything else literal. */
export function compilePathPattern(path: string): RegExp {
  const segments = path.split('/').slice(1)
  let re = '^'
  for (const seg of segments) {
    if (seg === '**') re += '(?:/[^/]*)*'
    else if (seg === '*') re += '/[^/]+'
    else re += `/${seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`
  }
  return new RegExp(`${re}/?$`)
}

function compileRule(rule: RuleConfig): CompiledRule {
  return {
    methods: rule.methods === '*' ? null : new Set(rule.methods),
    pattern: compilePathPattern(rule.path),
    action: rule.action,
  }
}

export function compileRoutes(config: Pick<Config, 'mounts'>): CompiledRoutes {
  const mounts = config.mounts.map((m) => ({
    index: 0,
    prefix: m.path === '/' ? '' : m.path,
    upstream: new URL(m.upstream),
    wado: m.wado ? new URL(m.wado) : null,
    wadoNormalizeQuery: m.wadoNormalizeQuery,
    rules: m.resources ? compileResourceRules(m.resources) : (m.rules ?? DICOMWEB_RULES).map(compileRule),
    config: m,
  }))
  mounts.sort((a, b) => b.prefix.length - a.prefix.length)
  mounts.forEach((m, i) => {
    m.index = i
  })
  return { mounts }
}
