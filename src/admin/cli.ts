// `tokengate token …`, `tokengate album …`, `tokengate inbox …` and `tokengate audit`: argv →
// TokenAdmin (admin/tokens.ts) or StudyAdmin (admin/studies.ts, commands in
// admin/study-commands.ts) → text or JSON. This file only parses arguments, opens Redis from the
// config file and prints; every check and every Redis write is in tokens.ts / studies.ts /
// audit.ts, shared with the admin HTTP API. Changes are audited as the OS user, or `--actor NAME`
// / `$TOKENGATE_ACTOR`. Exit codes: 0 done, 2 usage or input error (the message says what to
// change), 1 runtime error (Redis unreachable…).
import { type ParseArgsConfig, parseArgs } from 'node:util'
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
import { type AuditEvent, auditQuery, checkActor, osUser } from './audit.js'
import {
  precheckRefresh,
  REFRESH_FLAGS,
  REFRESH_USAGE,
  runRefreshCreate,
  wantsRefresh,
} from './refresh-cli.js'
import { StudyAdmin } from './studies.js'
import {
  ALBUM_STUDY_COMMANDS,
  ALBUM_STUDY_USAGE,
  INBOX_COMMANDS,
  INBOX_USAGE,
  type StudyCommand,
} from './study-commands.js'
import {
  AdminInputError,
  AdminNotFound,
  type CreateInput,
  TokenAdmin,
  type TokenInfo,
  validateCreate,
} from './tokens.js'

/** Where the CLI writes; each call is a whole chunk of text, newlines included. */
export interface CliIO {
  stdout: (s: string) => void
  stderr: (s: string) => void
}

const processIO: CliIO = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
}

const CONFIG_NOTE = `every command takes --config FILE (default $TOKENGATE_CONFIG, then ./tokengate.yaml);
changes are audited as --actor NAME (default $TOKENGATE_ACTOR, then the OS user)`

const TOKEN_USAGE = `usage: tokengate token <command> [options]

commands:
  create --kind album --album ID --perms read[,write,download,appropriate] --expires 30d|ISO-DATE
         [--user ID] [--description TEXT] [--json]
  create --kind user --user ID --expires 30d|ISO-DATE [--description TEXT] [--json]
  create --kind user --user ID --refresh [--client-id ID] [--offline] [--access-ttl 15m]
         [--refresh-expires 90d] [--json]
  list [--user ID] [--album ID] [--json]
  show ID [--json]
  revoke ID                 permanent; every replica refuses the token on its next request
                            (a refresh token id rtk_…: it and every access token it minted)
  revoke --user ID          revoke all of a user's tokens
  disable ID                refuse the token until it is enabled again
  enable ID

${CONFIG_NOTE}
tokengate token <command> --help describes one command`

const ALBUM_USAGE = `usage: tokengate album <command> [options]

commands:
  add-member ALBUM USER     let USER's user tokens ask for ?album=ALBUM
  remove-member ALBUM USER
${ALBUM_STUDY_USAGE}

${CONFIG_NOTE}`

export type Values = Record<string, string | boolean | undefined>

interface Command {
  usage: string
  options: NonNullable<ParseArgsConfig['options']>
  /** Allowed number of positionals [min, max]. */
  positionals: [number, number]
  /** Checks that need no config nor Redis, so such mistakes are reported first. */
  precheck?: (values: Values, positionals: string[]) => void
  run: (admin: TokenAdmin, values: Values, positionals: string[], out: Output) => Promise<void>
}

const json = { type: 'boolean' } as const
const str = { type: 'string' } as const

/** A mistake in the command line itself (not in a value TokenAdmin checks). */
class UsageError extends Error {
  /** The message already shows the usage line, so no `--help` hint is added. */
  constructor(
    message: string,
    readonly showsUsage = false,
  ) {
    super(message)
  }
}

const COMMANDS: Record<string, Record<string, Command>> = {
  token: {
    create: {
      usage: `usage: tokengate token create --kind album --album ID --perms PERMS --expires WHEN [options]
       tokengate token create --kind user --user ID --expires WHEN [options]

Mint a token. Its secret is printed once and stored only as a sha256 hash.

  --kind album|user      album: pinned to one album with the given permissions;
                         user: every permission over the user's albums and inbox
  --album ID             the album (album tokens)
  --user ID              the owner (user tokens; optional for album tokens, for audit)
  --perms LIST           album tokens: comma-separated read,write,download,appropriate
  --expires WHEN         mandatory: a duration (30d, 12h, 2w) or an ISO date (2027-01-31,
                         2027-01-31T12:00:00Z)
  --description TEXT     a note shown by list and show
  --tenant ID            an optional tenant label
  --json                 print JSON: id, token, kind, user, album, perms, expiresAt, createdAt
                         (with --refresh also refreshToken, refreshTokenId, refreshExpiresAt, clientId)
${REFRESH_USAGE}`,
      options: {
        kind: str,
        album: str,
        user: str,
        perms: str,
        expires: str,
        description: str,
        tenant: str,
        json,
        ...REFRESH_FLAGS,
      },
      positionals: [0, 0],
      precheck: (v) => {
        if (wantsRefresh(v)) return precheckRefresh(createInput(v), v)
        validateCreate(createInput(v), Date.now())
      },
      run: async (admin, v, _p, out) => {
        if (v.refresh) return runRefreshCreate(admin, createInput(v), v, out)
        const created = await admin.create(createInput(v))
        if (v.json) return out.json(created)
        out.line('Token created. Copy the secret now: it will not be shown again.')
        out.line('')
        out.table(
          [
            ['token', created.token],
            ['id', created.id],
            ['kind', created.kind],
            ['user', created.user || '-'],
            ['album', created.album || '-'],
            ['perms', created.perms.join(',')],
            ['expires', created.expiresAt],
          ],
          '  ',
        )
      },
    },
    list: {
      usage: `usage: tokengate token list [--user ID] [--album ID] [--json]

List tokens (newest last), never their secrets. Expired tokens stay listed for tokens.expiredGrace.

  --user ID    only this user's tokens
  --album ID   only tokens pinned to this album
  --json       print a JSON array`,
      options: { user: str, album: str, json },
      positionals: [0, 0],
      run: async (admin, v, _p, out) => {
        const filter: { user?: string; album?: string } = {}
        if (typeof v.user === 'string') filter.user = v.user
        if (typeof v.album === 'string') filter.album = v.album
        const tokens = await admin.list(filter)
        if (v.json) return out.json(tokens)
        if (tokens.length === 0) return out.line('no tokens')
        out.table([
          ['ID', 'KIND', 'STATUS', 'USER', 'ALBUM', 'PERMS', 'EXPIRES', 'LAST USED', 'DESCRIPTION'],
          ...tokens.map((t) => [
            t.id,
            t.kind,
            t.status,
            t.user || '-',
            t.album || '-',
            t.perms.join(','),
            t.expiresAt,
            t.lastUsedAt ?? '-',
            shorten(t.description, 40),
          ]),
        ])
      },
    },
    show: {
      usage: `usage: tokengate token show ID [--json]

Show one token (never its secret).`,
      options: { json },
      positionals: [1, 1],
      run: async (admin, v, [id], out) => {
        const info = await admin.show(id as string)
        if (!info)
          throw new AdminNotFound(`no token with id "${id}" (check the id with \`tokengate token list\`)`)
        if (v.json) return out.json(info)
        out.info(info)
      },
    },
    revoke: {
      usage: `usage: tokengate token revoke ID [--json]
       tokengate token revoke --user ID [--json]

Revoke a token, or every token of a user. Permanent: a revoked token cannot be enabled again.
Every running tokengate refuses it on its next request.`,
      options: { user: str, json },
      positionals: [0, 1],
      precheck: (v, p) => {
        if (p.length === 1 && v.user !== undefined)
          throw new UsageError('give a token ID or --user ID, not both')
        if (p.length === 0 && v.user === undefined)
          throw new UsageError('give the token ID to revoke, or --user ID')
      },
      run: async (admin, v, [id], out) => {
        if (typeof v.user === 'string') {
          const revoked = await admin.revokeUser(v.user)
          if (v.json) return out.json({ user: v.user, revoked })
          return out.line(`revoked ${revoked} token${revoked === 1 ? '' : 's'} of user ${v.user}`)
        }
        const info = await admin.revoke(id as string)
        if (v.json) return out.json(info)
        out.line(`revoked ${info.id}`)
      },
    },
    disable: {
      usage: `usage: tokengate token disable ID [--json]

Refuse a token until \`tokengate token enable ID\`.`,
      options: { json },
      positionals: [1, 1],
      run: async (admin, v, [id], out) => {
        const info = await admin.disable(id as string)
        if (v.json) return out.json(info)
        out.line(`disabled ${info.id}`)
      },
    },
    enable: {
      usage: `usage: tokengate token enable ID [--json]

Enable a disabled token (a revoked one cannot be enabled).`,
      options: { json },
      positionals: [1, 1],
      run: async (admin, v, [id], out) => {
        const info = await admin.enable(id as string)
        if (v.json) return out.json(info)
        out.line(`enabled ${info.id}${info.status === 'active' ? '' : ` (status: ${info.status})`}`)
      },
    },
  },
  album: {
    'add-member': {
      usage: `usage: tokengate album add-member ALBUM USER [--json]

Make USER a member of ALBUM: USER's user tokens may then ask for ?album=ALBUM.`,
      options: { json },
      positionals: [2, 2],
      run: async (admin, v, [album, user], out) => {
        const { changed } = await admin.addMember(album as string, user as string)
        if (v.json) return out.json({ album, user, changed })
        out.line(
          changed
            ? `${user} is now a member of album ${album}`
            : `${user} was already a member of album ${album}`,
        )
      },
    },
    'remove-member': {
      usage: `usage: tokengate album remove-member ALBUM USER [--json]

Remove USER from ALBUM: every running tokengate refuses ?album=ALBUM to USER's user tokens.`,
      options: { json },
      positionals: [2, 2],
      run: async (admin, v, [album, user], out) => {
        const { changed } = await admin.removeMember(album as string, user as string)
        if (v.json) return out.json({ album, user, changed })
        out.line(
          changed
            ? `${user} is no longer a member of album ${album}`
            : `${user} was not a member of album ${album}`,
        )
      },
    },
  },
}

const AUDIT: Command = {
  usage: `usage: tokengate audit [--since DURATION|ISO-DATE] [--limit N] [--json]

List the audit trail, oldest first: who changed which token or membership, and when (a capped
Redis stream holding about audit.maxLen entries). Never a secret.

  --since WHEN   only changes at or after WHEN: a duration back from now (1h, 7d) or an ISO date
                 (2027-01-31, 2027-01-31T12:00:00Z)
  --limit N      the most recent N of them (1 to 10000, default 100)
  --json         print a JSON array of { id, at, actor, client, op, tokenId, user, album, … }`,
  options: { since: str, limit: str, json },
  positionals: [0, 0],
  precheck: (v) => {
    auditQuery(auditInput(v), Date.now())
  },
  run: async (admin, v, _p, out) => {
    const events = await admin.audit.list(auditQuery(auditInput(v), Date.now()))
    if (v.json) return out.json(events)
    if (events.length === 0) return out.line('no audit events')
    out.table([
      ['TIME', 'ACTOR', 'OPERATION', 'TOKEN', 'USER', 'ALBUM', 'DETAILS'],
      ...events.map((e) => [
        e.at,
        e.client ? `${e.actor} (${e.client})` : e.actor,
        e.op,
        e.tokenId ?? '-',
        e.user ?? '-',
        e.album ?? '-',
        details(e),
      ]),
    ])
  },
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
  const usage = group === 'album' ? ALBUM_USAGE : group === 'inbox' ? INBOX_USAGE : TOKEN_USAGE
  const commands = group === undefined ? undefined : { ...COMMANDS[group], ...STUDY_COMMANDS[group] }
  if (!commands || Object.keys(commands).length === 0) {
    io.stderr(`tokengate: unknown command "${group ?? ''}"; expected token, album, inbox or audit\n`)
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
      io.stdout(`${command.usage}\n\n${CONFIG_NOTE}\n`)
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

function auditInput(v: Values): { since?: string; limit?: string } {
  const input: { since?: string; limit?: string } = {}
  if (typeof v.since === 'string') input.since = v.since
  if (typeof v.limit === 'string') input.limit = v.limit
  return input
}

/** The DETAILS column of `tokengate audit`: what the operation did beyond its ids. */
function details(e: AuditEvent): string {
  const parts: string[] = []
  if (e.kind) parts.push(`kind=${e.kind}`)
  if (e.perms) parts.push(`perms=${e.perms.join(',')}`)
  if (e.expiresAt) parts.push(`expires=${e.expiresAt}`)
  if (e.count !== undefined) parts.push(`revoked=${e.count}`)
  if (e.changed === false) parts.push('no change')
  return parts.join(' ') || '-'
}

function createInput(v: Values): CreateInput {
  const input: CreateInput = { kind: v.kind as CreateInput['kind'] }
  for (const key of ['user', 'album', 'perms', 'description', 'tenant'] as const) {
    if (typeof v[key] === 'string') input[key] = v[key]
  }
  if (typeof v.expires === 'string') {
    // A number with an optional unit is a duration (a bare number is refused: it needs a unit);
    // anything else is read as a date.
    if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$/.test(v.expires)) input.expiresIn = v.expires
    else input.expiresAt = v.expires
  }
  return input
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

export interface Output {
  line: (s: string) => void
  json: (value: unknown) => void
  /** Rows with aligned columns. */
  table: (rows: string[][], indent?: string) => void
  info: (t: TokenInfo) => void
}

function output(io: CliIO): Output {
  const out: Output = {
    line: (s) => io.stdout(`${s}\n`),
    json: (value) => io.stdout(`${JSON.stringify(value, null, 2)}\n`),
    table: (rows, indent = '') => {
      const widths: number[] = []
      for (const row of rows) {
        row.forEach((cell, i) => {
          widths[i] = Math.max(widths[i] ?? 0, cell.length)
        })
      }
      const text = rows.map((row) =>
        (
          indent + row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  ')
        ).trimEnd(),
      )
      io.stdout(`${text.join('\n')}\n`)
    },
    info: (t) =>
      out.table([
        ['id', t.id],
        ['status', t.status],
        ['kind', t.kind],
        ['user', t.user || '-'],
        ['album', t.album || '-'],
        ['perms', t.perms.join(',')],
        ['expires', t.expiresAt],
        ['created', t.createdAt],
        ['enabled', t.enabled ? 'yes' : 'no'],
        ['revoked', t.revokedAt ?? '-'],
        ['last used', t.lastUsedAt ?? 'never'],
        ['description', t.description || '-'],
        ...(t.tenant ? [['tenant', t.tenant]] : []),
      ]),
  }
  return out
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
