// `tokengate token …`, `tokengate album add-member|remove-member` and `tokengate audit`: the
// command tables (usage, options, and how each maps argv to TokenAdmin and prints the answer).
// admin/cli.ts runs them; every check and every Redis write is in admin/tokens.ts and the input
// rules in admin/token-input.ts, shared with the admin HTTP API.

import { attrsFromPairs } from './attrs-input.js'
import { type AuditEvent, type AuditInput, auditQuery } from './audit.js'
import {
  CONFIG_NOTE,
  type Command,
  json,
  many,
  optional,
  repeated,
  str,
  UsageError,
  type Values,
} from './cli-command.js'
import { attrsCell, printSetPage, setPage } from './cli-output.js'
import { parseGrantInput } from './grant-input.js'
import {
  precheckRefresh,
  REFRESH_FLAGS,
  REFRESH_USAGE,
  runRefreshCreate,
  wantsRefresh,
} from './refresh-cli.js'
import { ALBUM_STUDY_USAGE } from './study-commands.js'
import { bulkCommand } from './token-bulk-cli.js'
import {
  type CreateInput,
  checkDescription,
  createTokenSchema,
  parseInput,
  type TokenUpdate,
  updateTokenSchema,
  validateCreate,
} from './token-input.js'
import { FILTER_OPTIONS, FILTER_USAGE, narrowRows, queryInput, wideRows } from './token-list-cli.js'
import { DEFAULT_PAGE, MAX_PAGE, parseQuery } from './token-query.js'
import { AdminInputError, AdminNotFound } from './tokens.js'

export const TOKEN_USAGE = `usage: tokengate token <command> [options]

commands:
  create --kind album --album ID --perms read[,write,download,appropriate] --expires 30d|ISO-DATE
         [--user ID] [--description TEXT] [--json]
  create --kind user --user ID --expires 30d|ISO-DATE [--description TEXT] [--json]
  create --kind api --grant TYPE:ID:ACTION[,ACTION] [--grant …] --expires 30d|ISO-DATE [--json]
  create --kind user --user ID --refresh [--client-id ID] [--offline] [--access-ttl 15m]
         [--refresh-expires 90d] [--json]
  list [filters] [--sort created|expires|last-used] [--desc] [--limit N] [--cursor C] [--wide]
       [--json]             a page of tokens (filters: token list --help)
  show ID [--json]
  identify [--revoke] [--json]  the token of a secret read on standard input (a leaked one)
  revoke ID…                permanent; every replica refuses the tokens on their next request
                            (a refresh token id rtk_…: it and every access token it minted)
  revoke --user ID          revoke all of a user's tokens
  revoke --filter [filters] [--dry-run]
                            revoke every token the list filters select, audited as one change
  disable ID… | --filter …  refuse the tokens until they are enabled again
  enable ID… | --filter …
  delete ID…                remove revoked or expired tokens from Redis and listings now
  update ID [--grant G]… [--remove-grant G]… [--enable|--disable] [--description TEXT]
  prune-index               maintenance: drop index entries of tokens gone from Redis

${CONFIG_NOTE}
tokengate token <command> --help describes one command`

export const ALBUM_USAGE = `usage: tokengate album <command> [options]

commands:
  members ALBUM             the album's members, a page at a time
  add-member ALBUM USER     let USER's user tokens ask for ?album=ALBUM
  remove-member ALBUM USER
${ALBUM_STUDY_USAGE}

${CONFIG_NOTE}`

export const COMMANDS: Record<string, Record<string, Command>> = {
  token: {
    create: {
      usage: `usage: tokengate token create --kind album --album ID --perms PERMS --expires WHEN [options]
       tokengate token create --kind user --user ID --expires WHEN [options]
       tokengate token create --kind api --grant GRANT… --expires WHEN [options]
       tokengate token create --kind user|api … --refresh [refresh options]

Mint a token. Its secret is printed once and stored only as a sha256 hash.

  --kind album|user|api  album: pinned to one album with the given permissions;
                         user: every permission over the user's albums and inbox;
                         api: the resources its grants cover (mounts[].resources)
  --album ID             the album (album tokens)
  --user ID              the owner (user tokens; optional for album tokens, for audit)
  --perms LIST           album tokens: comma-separated read,write,download,appropriate
  --expires WHEN         mandatory: a duration (30d, 12h, 2w) or an ISO date (2027-01-31,
                         2027-01-31T12:00:00Z)
  --description TEXT     a note shown by list and show
  --tenant ID            an optional tenant label
  --attr KEY=VALUE       an attribute (repeatable), over the user's own (KEY= drops one of the
                         user's); forwarded upstream as identityHeaders.attributes names
  --grant GRANT          api tokens: a grant TYPE:ID:ACTION[,ACTION] or admin (repeatable)
  --json                 print JSON: id, token, kind, user, album, perms, expiresAt, createdAt
                         (with --refresh also refreshToken, refreshTokenId, refreshExpiresAt, clientId)
${REFRESH_USAGE}`,
      example: 'tokengate token create --kind album --album TEACHING --perms read --expires 30d',
      options: {
        kind: str,
        album: str,
        user: str,
        perms: str,
        expires: str,
        description: str,
        tenant: str,
        attr: many,
        grant: many,
        json,
        ...REFRESH_FLAGS,
      },
      positionals: [0, 0],
      precheck: (v) => {
        if (wantsRefresh(v)) return precheckRefresh(createInput(v), v)
        validateCreate(createInput(v), Date.now())
      },
      configCheck: (v, config) => {
        if (v.refresh) return
        validateCreate(createInput(v), Date.now(), { maxLifetime: config.tokens.maxLifetime })
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
            ['attrs', attrsCell(created.attrs)],
            ...(created.grants ? [['grants', created.grants.join(' ')]] : []),
            ['expires', created.expiresAt],
          ],
          '  ',
        )
      },
    },
    list: {
      usage: `usage: tokengate token list [filters] [--sort created|expires|last-used] [--desc]
                           [--limit N] [--cursor C] [--wide] [--json]

List tokens a page at a time, oldest first, never their secrets. Expired and revoked tokens stay
listed until they leave Redis (tokens.expiredGrace) or \`token delete\` removes them.

${FILTER_USAGE}
  --sort KEY          created (default), expires or last-used
  --desc              newest (latest) first
  --limit N           tokens per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})
  --cursor C          the page after the one that printed C (\`next page: --cursor C\`)
  --wide              every column, nothing shortened (default: a table within 100 columns)
  --json              print the page: { items: [...], nextCursor: string | null }`,
      example: `tokengate token list --user alice --status active --sort expires --limit 20`,
      options: {
        ...FILTER_OPTIONS,
        sort: str,
        desc: { type: 'boolean' },
        limit: str,
        cursor: str,
        wide: json,
        json,
      },
      positionals: [0, 0],
      precheck: (v) => {
        parseQuery(queryInput(v), Date.now())
      },
      run: async (admin, v, _p, out) => {
        const page = await admin.listPage(queryInput(v))
        if (v.json) return out.json(page)
        if (page.items.length === 0) return out.line('no tokens')
        out.table(v.wide ? wideRows(page.items) : narrowRows(page.items))
        if (page.nextCursor) out.line(`next page: --cursor ${page.nextCursor}`)
      },
    },
    show: {
      usage: `usage: tokengate token show ID [--json]

Show one token by its public id (tok_…), or a refresh token family by its id (rtk_…: the user,
client, kind of tokens it mints, expiry and status), never a secret. To find the token of a secret,
pipe the secret to \`tokengate token identify\` (a secret given here is not echoed back).

  --json   print the token as JSON`,
      example: `tokengate token show tok_3kT9xQ2mVb7LwPzR`,
      options: { json },
      positionals: [1, 1],
      run: async (admin, v, [id], out) => {
        // The argument may be a secret pasted by mistake: no message repeats it.
        const info = await admin.showAny(id as string).catch((err: unknown) => {
          if (err instanceof AdminInputError) throw notAnId()
          throw err
        })
        if (!info) throw notAnId()
        if (v.json) return out.json(info)
        out.info(info)
      },
    },
    identify: {
      usage: `usage: tokengate token identify [--revoke] [--json] < FILE

Trace a secret (a leaked one, say) to its token: reads the secret from standard input, never from
the command line (so it stays out of shell history and \`ps\`), and prints the token's id, kind,
user, album, status and creator. Never prints the secret.

  --revoke   revoke the token at once (every running tokengate refuses it on its next request)
  --json     print the token as JSON`,
      example: `tokengate token identify --revoke < leaked-secret.txt`,
      options: { revoke: { type: 'boolean' }, json },
      positionals: [0, 0],
      run: async (admin, v, _p, out) => {
        const info = await admin.identify(await out.input(), { revoke: Boolean(v.revoke) })
        if (v.json) return out.json(info)
        out.info(info)
        if (v.revoke) out.line(`revoked ${info.id}`)
      },
    },
    revoke: bulkCommand('revoke', async (admin, v, id, out) => {
      if (typeof v.user === 'string') {
        const revoked = await admin.revokeUser(v.user)
        if (v.json) return out.json({ user: v.user, revoked })
        return out.line(`revoked ${revoked} token${revoked === 1 ? '' : 's'} of user ${v.user}`)
      }
      const info = await admin.revoke(id as string)
      if (v.json) return out.json(info)
      out.line(`revoked ${info.id}`)
    }),
    disable: bulkCommand('disable', async (admin, v, id, out) => {
      const info = await admin.disable(id as string)
      if (v.json) return out.json(info)
      out.line(`disabled ${info.id}`)
    }),
    enable: bulkCommand('enable', async (admin, v, id, out) => {
      const info = await admin.enable(id as string)
      if (v.json) return out.json(info)
      out.line(`enabled ${info.id}${info.status === 'active' ? '' : ` (status: ${info.status})`}`)
    }),
    delete: bulkCommand('delete', undefined),
    update: {
      usage: `usage: tokengate token update ID [options]

Change a live token without a new secret; every running tokengate uses the change on its next
request.

  --grant GRANT          add a grant TYPE:ID:ACTION[,ACTION] or admin (repeatable)
  --remove-grant GRANT   remove a grant (repeatable)
  --enable | --disable   enable or disable the token (a revoked one cannot be enabled)
  --description TEXT     replace the description
  --json                 print the token as JSON`,
      example:
        'tokengate token update tok_3kT9xQ2mVb7LwPzR --grant album:TEACHING:read --description "teaching set"',
      options: {
        grant: many,
        'remove-grant': many,
        enable: { type: 'boolean' },
        disable: { type: 'boolean' },
        description: str,
        json,
      },
      positionals: [1, 1],
      precheck: (v) => {
        const change = updateInput(v)
        parseGrantInput(change.add, 'grant')
        parseGrantInput(change.remove, 'removeGrant')
        if (change.description !== undefined) checkDescription(change.description)
      },
      run: async (admin, v, [id], out) => {
        const info = await admin.grants.updateGrants(id as string, updateInput(v))
        if (v.json) return out.json(info)
        const grants = info.grants ? `; grants: ${info.grants.join(' ') || 'none'}` : ''
        out.line(`updated ${info.id} (status: ${info.status}${grants})`)
      },
    },
    'prune-index': {
      usage: `usage: tokengate token prune-index [--json]

Maintenance: remove from the token indexes (every token, per user, per album) the ids of tokens
that have left Redis (their id key expired tokens.expiredGrace after the token). \`token list\`
never removes index entries itself. Also fills the indexes added by upgrades from what is already
stored: the sorted token indexes, and each album's members (\`album members\`) from the users'
album sets. Run it once after upgrading; running it again changes nothing.

  --json   print { removed, membersAdded }`,
      example: 'tokengate token prune-index',
      options: { json },
      positionals: [0, 0],
      run: async (admin, v, _p, out) => {
        const { removed, membersAdded } = await admin.pruneIndex()
        if (v.json) return out.json({ removed, membersAdded })
        out.line(
          `removed ${removed} index entr${removed === 1 ? 'y' : 'ies'}; added ${membersAdded} album member${membersAdded === 1 ? '' : 's'}`,
        )
      },
    },
  },
  album: {
    members: {
      usage: `usage: tokengate album members ALBUM [--limit N] [--cursor C] [--json]

List the users who are members of ALBUM (their user tokens may ask for ?album=ALBUM), sorted, a
page at a time. Memberships made before this listing existed appear once re-added.

  --limit N    members per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})
  --cursor C   the page after the one that printed C
  --json       print the page: { items: [...], nextCursor: string | null }`,
      example: `tokengate album members TEACHING --limit 50`,
      options: { limit: str, cursor: str, json },
      positionals: [1, 1],
      run: async (admin, v, [album], out) =>
        printSetPage(out, v, await admin.albumMembers(album as string, setPage(v)), 'no members'),
    },
    'add-member': {
      usage: `usage: tokengate album add-member ALBUM USER [--json]

Make USER a member of ALBUM: USER's user tokens may then ask for ?album=ALBUM.`,
      example: 'tokengate album add-member TEACHING alice',
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
      example: 'tokengate album remove-member TEACHING alice',
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

/** The albums of a user (merged into the `user` group by admin/cli.ts). */
export const USER_ALBUMS: Command = {
  usage: `usage: tokengate user albums USER [--limit N] [--cursor C] [--json]

List the albums USER is a member of, sorted, a page at a time.

  --limit N    albums per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})
  --cursor C   the page after the one that printed C
  --json       print the page: { items: [...], nextCursor: string | null }`,
  example: `tokengate user albums alice`,
  options: { limit: str, cursor: str, json },
  positionals: [1, 1],
  run: async (admin, v, [user], out) =>
    printSetPage(out, v, await admin.userAlbums(user as string, setPage(v)), 'no albums'),
}

export const AUDIT: Command = {
  usage: `usage: tokengate audit [filters] [--since WHEN] [--until WHEN] [--limit N] [--cursor C]
                      [--follow] [--json]

The audit trail: who changed which token, user or membership, and when (a capped Redis stream
holding about audit.maxLen entries). Never a secret. A page is the newest --limit entries matching
the filters, printed oldest first; \`next page: --cursor C\` goes further back, as far as the stream
reaches.

  --token ID     entries about this token
  --user ID      entries about this user
  --album ID     entries about this album
  --actor NAME   changes made by this actor (the CLI user, or admin-api)
  --op OP        this operation (token.revoke), or a family (token, album)
  --since WHEN   at or after WHEN: a duration back from now (1h, 7d) or an ISO date
  --until WHEN   before WHEN
  --limit N      entries per page, 1 to 10000 (default 100)
  --cursor C     the page before (older than) the one that printed C
  --follow       after the page, print new entries as they are written, until interrupted
  --json         print the page as GET /audit answers it: { events: [{ id, at, actor, client, op,
                 tokenId, user, album, … }], nextCursor } (one event per line with --follow)`,
  example: `tokengate audit --op token --actor alice --since 7d`,
  options: {
    since: str,
    until: str,
    limit: str,
    cursor: str,
    token: str,
    user: str,
    album: str,
    actor: str,
    op: str,
    follow: { type: 'boolean' },
    json,
  },
  positionals: [0, 0],
  precheck: (v) => {
    auditQuery(auditInput(v), Date.now())
  },
  run: async (admin, v, _p, out) => {
    const query = auditQuery(auditInput(v), Date.now())
    const page = await admin.audit.page(query)
    if (v.json && !v.follow) return out.json(page)
    if (v.json) for (const e of page.events) out.line(JSON.stringify(e))
    else if (page.events.length === 0 && !v.follow) return out.line('no audit events')
    else if (page.events.length) out.table([AUDIT_HEADER, ...page.events.map(auditRow)])
    if (page.nextCursor && !v.follow) out.line(`next page: --cursor ${page.nextCursor}`)
    if (!v.follow) return
    // Until interrupted (the CLI's connection is its own: XREAD BLOCK holds it).
    const from = page.events.at(-1)?.id
    await admin.audit.follow(
      (e) => (v.json ? out.line(JSON.stringify(e)) : out.line(auditRow(e).join('  '))),
      { ...(query.match ? { match: query.match } : {}), ...(from ? { from } : {}), stop: () => false },
    )
  },
}

const AUDIT_HEADER = ['TIME', 'ACTOR', 'OPERATION', 'TOKEN', 'USER', 'ALBUM', 'DETAILS']

function auditRow(e: AuditEvent): string[] {
  return [
    e.at,
    e.client ? `${e.actor} (${e.client})` : e.actor,
    e.op,
    e.tokenId ?? '-',
    e.user ?? '-',
    e.album ?? '-',
    details(e),
  ]
}

function auditInput(v: Values): AuditInput {
  const input: AuditInput = {}
  for (const key of ['since', 'until', 'limit', 'cursor', 'user', 'album', 'actor', 'op'] as const) {
    const value = optional(v, key)
    if (value !== undefined) input[key] = value
  }
  const token = optional(v, 'token')
  if (token !== undefined) input.tokenId = token
  return input
}

/** The DETAILS column of `tokengate audit`: what the operation did beyond its ids. */
function details(e: AuditEvent): string {
  const parts: string[] = []
  if (e.kind) parts.push(`kind=${e.kind}`)
  if (e.perms) parts.push(`perms=${e.perms.join(',')}`)
  if (e.expiresAt) parts.push(`expires=${e.expiresAt}`)
  if (e.validUntil) parts.push(`validUntil=${e.validUntil}`)
  if (e.attrs) parts.push(`attrs=${String(e.attrs)}`)
  if (e.count !== undefined) parts.push(`count=${e.count}`)
  if (e.filter) parts.push(`filter=${String(e.filter)}`)
  if (e.ids) parts.push(`ids=${String(e.ids)}`)
  if (e.changed === false) parts.push('no change')
  return parts.join(' ') || '-'
}

function notAnId(): AdminNotFound {
  return new AdminNotFound(
    'no token with that id (ids look like tok_… or, for a refresh token, rtk_…; to trace a secret, pipe it to `tokengate token identify`)',
    'id',
  )
}

/** `token update`'s flags as the input schema the admin API's PATCH /tokens/{id} shares. */
export function updateInput(v: Values): TokenUpdate {
  if (v.enable && v.disable) throw new UsageError('give --enable or --disable, not both')
  const raw: Record<string, unknown> = {}
  const add = repeated(v, 'grant')
  const remove = repeated(v, 'remove-grant')
  if (add.length) raw.add = add
  if (remove.length) raw.remove = remove
  if (v.enable || v.disable) raw.enabled = Boolean(v.enable)
  const description = optional(v, 'description')
  if (description !== undefined) raw.description = description
  return parseInput(updateTokenSchema, raw)
}

/** `token create`'s flags as the input schema admin/token-input.ts shares with the admin API. */
export function createInput(v: Values): CreateInput {
  const raw: Record<string, unknown> = { kind: optional(v, 'kind') }
  for (const key of ['user', 'album', 'perms', 'description', 'tenant'] as const) raw[key] = optional(v, key)
  const expires = optional(v, 'expires')
  if (expires !== undefined) {
    // A number with an optional unit is a duration (a bare number is refused: it needs a unit);
    // anything else is read as a date.
    if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$/.test(expires)) raw.expiresIn = expires
    else raw.expiresAt = expires
  }
  const attrs = repeated(v, 'attr')
  if (attrs.length) raw.attrs = attrsFromPairs(attrs)
  const grants = repeated(v, 'grant')
  if (grants.length) raw.grants = grants
  for (const key of Object.keys(raw)) if (raw[key] === undefined) delete raw[key]
  return parseInput(createTokenSchema, raw)
}
