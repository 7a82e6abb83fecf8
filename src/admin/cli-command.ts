// The CLI's command shape (admin/cli.ts runs the tables in admin/token-commands.ts,
// admin/user-commands.ts and admin/study-commands.ts): options, positionals, checks before any
// config or Redis, and the run function over the admin operations.
import type { ParseArgsConfig } from 'node:util'
import type { Config } from '../config/schema.js'
import type { Output } from './cli-output.js'
import type { TokenAdmin } from './tokens.js'

export const CONFIG_NOTE = `every command takes --config FILE (default $TOKENGATE_CONFIG, then ./tokengate.yaml);
changes are audited as --actor NAME (default $TOKENGATE_ACTOR, then the OS user)`

/** Parsed options: repeatable ones (`--attr`, `--grant`) are arrays. */
export type Values = Record<string, string | boolean | string[] | undefined>

export interface Command {
  usage: string
  options: NonNullable<ParseArgsConfig['options']>
  /** Allowed number of positionals [min, max]. */
  positionals: [number, number]
  /** Checks that need no config nor Redis, so such mistakes are reported first. */
  precheck?: (values: Values, positionals: string[]) => void
  /** Checks that need the config but no Redis (bounds such as tokens.maxLifetime). */
  configCheck?: (values: Values, config: Config) => void
  run: (admin: TokenAdmin, values: Values, positionals: string[], out: Output) => Promise<void>
}

export const json = { type: 'boolean' } as const
export const str = { type: 'string' } as const
/** A repeatable string option (`--attr a=1 --attr b=2`). */
export const many = { type: 'string', multiple: true } as const

/** A mistake in the command line itself (not in a value TokenAdmin checks). */
export class UsageError extends Error {
  /** The message already shows the usage line, so no `--help` hint is added. */
  constructor(
    message: string,
    readonly showsUsage = false,
  ) {
    super(message)
  }
}

/** A string option's value, or undefined. */
export function optional(v: Values, name: string): string | undefined {
  const value = v[name]
  return typeof value === 'string' ? value : undefined
}

/** A repeatable option's values ([] when absent). */
export function repeated(v: Values, name: string): string[] {
  const value = v[name]
  return Array.isArray(value) ? value : typeof value === 'string' ? [value] : []
}
