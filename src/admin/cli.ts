// `tokengate token …`, `user …`, `album …`, `inbox …` and `audit`: the runner. It finds the
// command in the tables (admin/token-commands.ts, admin/user-commands.ts,
// admin/study-commands.ts), parses argv, opens Redis from the config file, runs the command over
// TokenAdmin (admin/tokens.ts; users via its `.users`) or StudyAdmin (admin/studies.ts) and maps
// errors to exit codes. Changes are audited as the OS user, or `--actor NAME` /
// `$TOKENGATE_ACTOR`. Exit codes: 0 done, 2 usage or input error (the message says what to
// change), 1 runtime error (Redis unreachable…).
import { parseArgs } from 'node:util'
import { loadConfigFile } from '../config/load.js'
import { ConfigError } from '../errors.js'
import { makeKeys } from '../token/keys.js'
import {
  closeRedis,
  connectRedis,
  describeRedis,
  isConnectionError,
  redisConfigKey,
} from '../token/redis-client.js'
import { checkActor, osUser } from './audit.js'
import { type Command, renderHelp, UsageError, type Values } from './cli-command.js'
import { type CliIO, output } from './cli-output.js'
import { AdminInputError } from './input-error.js'
import { StudyAdmin } from './studies.js'
import { ALBUM_STUDY_COMMANDS, INBOX_COMMANDS, INBOX_USAGE, type StudyCommand } from './study-commands.js'
import { ALBUM_USAGE, AUDIT, COMMANDS, TOKEN_USAGE, USER_ALBUMS } from './token-commands.js'
import { TokenAdmin } from './tokens.js'
import { USER_COMMANDS, USER_USAGE } from './user-commands.js'

export type { CliIO } from './cli-output.js'

const processIO: CliIO = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
}

const STUDY_COMMANDS: Record<string, Record<string, StudyCommand>> = {
  album: ALBUM_STUDY_COMMANDS,
  inbox: INBOX_COMMANDS,
}

/**
 * Run `token …`, `album …` or `audit` (argv[0] is the group). Resolves to the exit code: 0 done,
 * 2 usage or input error, 1 runtime error. Never throws; always closes its Redis connection.
 */
export async function runCli(argv: string[], io: CliIO = processIO): Promise<number> {
  const [group, name, ...args] = argv
  if (group === 'audit') return runCommand('tokengate audit', AUDIT, argv.slice(1), io)
  const usage =
    group === 'album'
      ? ALBUM_USAGE
      : group === 'inbox'
        ? INBOX_USAGE
        : group === 'user'
          ? USER_USAGE
          : TOKEN_USAGE
  const commands: Record<string, Command | StudyCommand> | undefined =
    group === undefined
      ? undefined
      : {
          ...COMMANDS[group],
          ...(group === 'user' ? { ...USER_COMMANDS, albums: USER_ALBUMS } : {}),
          ...STUDY_COMMANDS[group],
        }
  if (!commands || Object.keys(commands).length === 0) {
    io.stderr(`tokengate: unknown command "${group ?? ''}"; expected token, user, album, inbox or audit\n`)
    return 2
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout(`${usage}\n`)
    return 0
  }
  const command = name === undefined ? undefined : commands[name]
  if (!command) {
    io.stderr(`${name === undefined ? '' : `tokengate: unknown command "${group} ${name}"\n`}${usage}\n`)
    return 2
  }
  return runCommand(`tokengate ${group} ${name}`, command, args, io)
}

async function runCommand(
  where: string,
  command: Command | StudyCommand,
  args: string[],
  io: CliIO,
): Promise<number> {
  let values: Values
  let actor: string
  let positionals: string[]
  try {
    ;({ values, positionals } = parseArgs({
      args,
      options: {
        ...command.options,
        config: { type: 'string', short: 'c' },
        actor: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }))
    if (values.help) {
      io.stdout(renderHelp(command))
      return 0
    }
    const [min, max] = command.positionals
    if (positionals.length > max) {
      throw new UsageError(`unexpected argument "${positionals[max]}"`)
    }
    if (positionals.length < min)
      throw new UsageError(`missing argument; usage: ${command.usage.split('\n')[0]?.slice(7)}`, true)
    command.precheck?.(values, positionals)
    // An empty $TOKENGATE_ACTOR counts as unset; an empty --actor is a mistake.
    actor = checkActor((values.actor as string | undefined) ?? (process.env.TOKENGATE_ACTOR || osUser()))
  } catch (err) {
    return inputError(io, where, err, true)
  }

  const configPath = (values.config as string | undefined) ?? process.env.TOKENGATE_CONFIG ?? 'tokengate.yaml'
  let config: Awaited<ReturnType<typeof loadConfigFile>>
  try {
    config = await loadConfigFile(configPath)
  } catch (err) {
    if (!(err instanceof ConfigError)) return runtimeError(io, where, err)
    io.stderr(`${where}: invalid configuration:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`)
    return 2
  }
  try {
    if ('configCheck' in command) command.configCheck?.(values, config)
  } catch (err) {
    return inputError(io, where, err, true)
  }

  const redis = connectRedis(config.redis, { failFast: false })
  let lastRedisError: Error | undefined
  redis.on('error', (err: Error) => {
    lastRedisError = err
  })
  try {
    const keys = makeKeys(config.redis.keyPrefix)
    const audit = { maxLen: config.audit.maxLen }
    if ('kind' in command) {
      await command.run(
        new StudyAdmin(redis, keys, { actor: { name: actor }, audit }),
        values,
        positionals,
        output(io),
      )
      return 0
    }
    const admin = new TokenAdmin(redis, keys, {
      secretPrefix: config.tokens.prefix,
      checksumKey: config.tokens.checksumKey,
      expiredGrace: config.tokens.expiredGrace,
      maxLifetime: config.tokens.maxLifetime,
      registry: config.users.registry,
      actor: { name: actor },
      audit,
    })
    await command.run(admin, values, positionals, output(io))
    return 0
  } catch (err) {
    if (err instanceof AdminInputError || err instanceof UsageError) return inputError(io, where, err, false)
    if (redis.status !== 'ready' || lastRedisError || isConnectionError(err)) {
      const cause = (lastRedisError as NodeJS.ErrnoException | undefined)?.code ?? (err as Error).message
      io.stderr(
        `${where}: cannot reach Redis at ${describeRedis(config.redis)} (${cause}); check \`${redisConfigKey(config.redis)}\` in ${configPath}\n`,
      )
      return 1
    }
    return runtimeError(io, where, err)
  } finally {
    await closeRedis(redis)
  }
}

/** One line on stderr, exit 2; `hint` points at --help (for mistakes in the command line). */
function inputError(io: CliIO, where: string, err: unknown, hint: boolean): number {
  const help = hint ? ` (see \`${where} --help\`)` : ''
  if (err instanceof AdminInputError || err instanceof UsageError) {
    io.stderr(`${where}: ${err.message}${err instanceof UsageError && err.showsUsage ? '' : help}\n`)
    return 2
  }
  const code = (err as NodeJS.ErrnoException).code
  if (err instanceof TypeError && code?.startsWith('ERR_PARSE_ARGS')) {
    // Node's text goes on about positionals after `--`; the first sentence is the useful part.
    io.stderr(`${where}: ${err.message.split(/\.\s/)[0]?.replace(/\.$/, '')}${help}\n`)
    return 2
  }
  return runtimeError(io, where, err)
}

function runtimeError(io: CliIO, where: string, err: unknown): number {
  io.stderr(`${where}: ${err instanceof Error ? err.message : String(err)}\n`)
  return 1
}
