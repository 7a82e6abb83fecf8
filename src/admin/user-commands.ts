// `tokengate user add|show|list|set|deactivate|activate`: the command table (usage, options, argv →
// UserAdmin via TokenAdmin's `.users`, and what is printed). admin/cli.ts runs it; every check is
// in admin/user-input.ts (the schema the admin API's `/users` shares) and admin/users.ts.
import { attrsFromPairs } from './attrs-input.js'
import { CONFIG_NOTE, type Command, json, many, optional, repeated, str, type Values } from './cli-command.js'
import { attrsCell, type Output } from './cli-output.js'
import { checkName } from './id-input.js'
import { AdminNotFound } from './input-error.js'
import { parseInput } from './token-input.js'
import { type UserInput, userSchema, validateUser } from './user-input.js'
import type { UserInfo } from './users.js'

export const USER_USAGE = `usage: tokengate user <command> [options]

commands:
  add USER [--name TEXT] [--email E] [--attr KEY=VALUE]… [--valid-until DATE]
  show USER [--json]
  list [--json]
  set USER [--name TEXT] [--email E] [--attr KEY=VALUE]… [--valid-until DATE|none]
  deactivate USER           every token of USER refused on every replica; no new tokens
  activate USER
  albums USER [--limit N] [--cursor C] [--json]
                            the albums USER is a member of, a page at a time

${CONFIG_NOTE}
tokengate user <command> --help describes one command`

const USER_OPTIONS = { name: str, email: str, attr: many, 'valid-until': str, json }

const OPTION_TEXT = `  --name TEXT            display name
  --email E              email address
  --attr KEY=VALUE       an attribute (repeatable; e.g. department=radiology, type=mobile): the
                         user's tokens inherit it unless they set their own; KEY= removes it
  --valid-until DATE     ISO date after which every token of the user is refused (none: no end)
  --json                 print the user as JSON`

/** The flags as the input schema admin/user-input.ts shares with the admin API. */
function userInput(v: Values): UserInput {
  const raw: Record<string, unknown> = {}
  const name = optional(v, 'name')
  const email = optional(v, 'email')
  const until = optional(v, 'valid-until')
  const attrs = repeated(v, 'attr')
  if (name !== undefined) raw.name = name
  if (email !== undefined) raw.email = email
  if (until !== undefined) raw.validUntil = until
  if (attrs.length) raw.attrs = attrsFromPairs(attrs)
  return parseInput(userSchema, raw)
}

function checkUserArgs(v: Values, [user]: string[]): void {
  checkName(user, 'the user', 'id')
  validateUser(userInput(v))
}

function printUser(out: Output, v: Values, u: UserInfo): void {
  if (v.json) {
    out.json(u)
    return
  }
  out.table([
    ['id', u.id],
    ['status', u.status],
    ['name', u.name || '-'],
    ['email', u.email || '-'],
    ['attrs', attrsCell(u.attrs)],
    ['valid until', u.validUntil ?? '-'],
    ['last active', u.lastActiveAt ?? 'never'],
    ['created', u.createdAt],
    ['updated', u.updatedAt],
  ])
}

export const USER_COMMANDS: Record<string, Command> = {
  add: {
    usage: `usage: tokengate user add USER [options]

Add a user record. Its attributes are inherited by tokens created for it; with
users.registry: required, tokens can only be created for users that exist and are active.

${OPTION_TEXT}`,
    example: "tokengate user add alice --name 'Alice Doe' --email alice@example.org --valid-until 2027-01-01",
    options: USER_OPTIONS,
    positionals: [1, 1],
    precheck: checkUserArgs,
    run: async (admin, v, [user], out) =>
      printUser(out, v, await admin.users.add(user as string, userInput(v))),
  },
  show: {
    usage: `usage: tokengate user show USER [--json]

Show a user: status (active, deactivated, or expired past --valid-until), attributes, last active.`,
    example: 'tokengate user show alice --json',
    options: { json },
    positionals: [1, 1],
    precheck: (_v, [user]) => {
      checkName(user, 'the user', 'id')
    },
    run: async (admin, v, [user], out) => {
      const info = await admin.users.show(user as string)
      if (!info) throw new AdminNotFound(`no user "${user}" (see \`tokengate user list\`)`, 'user')
      printUser(out, v, info)
    },
  },
  list: {
    usage: `usage: tokengate user list [--json]

List the users with a record: name, email, status, attributes, validity, last active.`,
    example: 'tokengate user list',
    options: { json },
    positionals: [0, 0],
    run: async (admin, v, _p, out) => {
      const users = await admin.users.list()
      if (v.json) return out.json(users)
      if (users.length === 0) return out.line('no users')
      out.table([
        ['ID', 'STATUS', 'NAME', 'EMAIL', 'ATTRS', 'VALID UNTIL', 'LAST ACTIVE'],
        ...users.map((u) => [
          u.id,
          u.status,
          u.name || '-',
          u.email || '-',
          attrsCell(u.attrs),
          u.validUntil ?? '-',
          u.lastActiveAt ?? '-',
        ]),
      ])
    },
  },
  set: {
    usage: `usage: tokengate user set USER [options]

Change a user. Attributes are merged (KEY= removes one); tokens keep the attributes they were
created with. A new --valid-until reaches every replica at once.

${OPTION_TEXT}`,
    example: 'tokengate user set alice --attr department=radiology',
    options: USER_OPTIONS,
    positionals: [1, 1],
    precheck: checkUserArgs,
    run: async (admin, v, [user], out) =>
      printUser(out, v, await admin.users.set(user as string, userInput(v))),
  },
  deactivate: {
    usage: `usage: tokengate user deactivate USER [--json]

Deactivate a user: every token of USER (access and refresh) is refused on every running tokengate
within the revocation delay, and no token can be created for it until \`tokengate user activate\`.`,
    example: 'tokengate user deactivate alice',
    options: { json },
    positionals: [1, 1],
    run: async (admin, v, [user], out) => {
      const info = await admin.users.deactivate(user as string)
      if (v.json) return out.json(info)
      out.line(`deactivated ${info.id}`)
    },
  },
  activate: {
    usage: `usage: tokengate user activate USER [--json]

Activate a deactivated user: its tokens that are still valid work again.`,
    example: 'tokengate user activate alice',
    options: { json },
    positionals: [1, 1],
    run: async (admin, v, [user], out) => {
      const info = await admin.users.activate(user as string)
      if (v.json) return out.json(info)
      out.line(`activated ${info.id}${info.status === 'active' ? '' : ` (status: ${info.status})`}`)
    },
  },
}
