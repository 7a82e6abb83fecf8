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

/** What `--help` shows of a command: renderHelp is the one place that lays it out. */
export interface CommandHelp {
  /** The usage line, what the command does and its own options (defaults in the text). */
  usage: string
  options: NonNullable<ParseArgsConfig['options']>
  /** One whole command line, printed as `example: …`. */
  example: string
}

export interface Command extends CommandHelp {
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

/** The options every command takes, with their defaults (`--help` lists them after the command's). */
const COMMON_OPTIONS = `options every command takes:
  -c, --config FILE  the config file (default $TOKENGATE_CONFIG, then ./tokengate.yaml)
  --actor NAME       changes are audited as NAME (default $TOKENGATE_ACTOR, then the OS user)
  -h, --help         this help`

/**
 * The `--help` text of every command: its usage and own options, the options every command takes
 * with their defaults, and one example. Every option the command accepts is listed: one the usage
 * text does not describe is named with its value placeholder.
 */
export function renderHelp(command: CommandHelp): string {
  const undescribed = Object.entries(command.options)
    .filter(([name]) => !new RegExp(`(^|\\s|\\[)--${name}\\b`).test(command.usage))
    .map(
      ([name, o]) => `  --${name}${o.type === 'string' ? ' VALUE' : ''}${o.multiple ? ' (repeatable)' : ''}`,
    )
  const own = undescribed.length ? `\n\nalso accepted:\n${undescribed.join('\n')}` : ''
  return `${command.usage}${own}\n\n${COMMON_OPTIONS}\n\nexample: ${command.example}\n`
}
