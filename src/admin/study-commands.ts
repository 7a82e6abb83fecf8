// `tokengate album add-study|remove-study|studies|import` and `tokengate inbox …`: argv → StudyAdmin
// (admin/studies.ts) → text or JSON. Declared apart from the token commands in admin/cli.ts, which
// runs them the same way (usage, --help, --config, exit codes); every check is in studies.ts.
import { readFile } from 'node:fs/promises'
import type { CommandHelp, Values } from './cli-command.js'
import { type Output, printSetPage, setPage } from './cli-output.js'
import { checkStudyUids, type StudyAdmin, type StudySetChange, studySetRef } from './studies.js'
import { DEFAULT_PAGE, MAX_PAGE } from './token-query.js'

export interface StudyCommand extends CommandHelp {
  /** Marks the commands that run over StudyAdmin rather than TokenAdmin. */
  kind: 'studies'
  positionals: [number, number]
  /** Checks that need no config nor Redis, so such mistakes are reported first. */
  precheck: (values: Values, positionals: string[]) => void
  run: (admin: StudyAdmin, values: Values, positionals: string[], out: Output) => Promise<void>
}

const json = { type: 'boolean' } as const
const str = { type: 'string' } as const

type SetKind = 'album' | 'inbox'

const WHO: Record<SetKind, { arg: string; noun: (name: string) => string }> = {
  album: { arg: 'ALBUM', noun: (name) => `album ${name}` },
  inbox: { arg: 'USER', noun: (name) => `${name}'s inbox` },
}

/** Read an import file, or standard input for `-`. */
async function readInput(path: string): Promise<string> {
  if (path !== '-') return readFile(path, 'utf8')
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function printChange(out: Output, v: Values, change: StudySetChange, verb: string, name: string): void {
  if (v.json) {
    out.json(change)
    return
  }
  const unchanged = change.given - change.changed
  out.line(
    `${verb} ${change.changed} of ${change.given} ${change.given === 1 ? 'study' : 'studies'} (${unchanged} ${verb === 'added' ? 'already there' : 'not there'}); ${name} now holds ${change.size}`,
  )
}

function commandsFor(kind: SetKind): Record<string, StudyCommand> {
  const { arg, noun } = WHO[kind]
  const checkName = (_v: Values, [name]: string[]) => {
    studySetRef(kind, name as string)
  }
  const checkNameAndUids = (_v: Values, [name, ...uids]: string[]) => {
    studySetRef(kind, name as string)
    checkStudyUids(uids, (i) => `argument ${i + 2}`)
  }
  const effect =
    kind === 'album'
      ? "album tokens of ALBUM (and its members' user tokens) see them"
      : "USER's user tokens see them with ?inbox=true or without ?album="
  return {
    'add-study': {
      kind: 'studies',
      usage: `usage: tokengate ${kind} add-study ${arg} UID… [--json]

Add StudyInstanceUIDs to ${kind === 'album' ? 'the album' : "the user's inbox"} (scoping: studies): ${effect}.`,
      example: `tokengate ${kind} add-study ${kind === 'album' ? 'TEACHING' : 'alice'} 1.2.840.113619.2.5.1`,
      options: { json },
      positionals: [2, Number.POSITIVE_INFINITY],
      precheck: checkNameAndUids,
      run: async (admin, v, [name, ...uids], out) => {
        const change = await admin.add(studySetRef(kind, name as string), uids)
        printChange(out, v, change, 'added', noun(name as string))
      },
    },
    'remove-study': {
      kind: 'studies',
      usage: `usage: tokengate ${kind} remove-study ${arg} UID… [--json]

Remove StudyInstanceUIDs: every running tokengate answers 404 for them on its next request.`,
      example: `tokengate ${kind} remove-study ${kind === 'album' ? 'TEACHING' : 'alice'} 1.2.840.113619.2.5.1`,
      options: { json },
      positionals: [2, Number.POSITIVE_INFINITY],
      precheck: checkNameAndUids,
      run: async (admin, v, [name, ...uids], out) => {
        const change = await admin.remove(studySetRef(kind, name as string), uids)
        printChange(out, v, change, 'removed', noun(name as string))
      },
    },
    studies: {
      kind: 'studies',
      usage: `usage: tokengate ${kind} studies ${arg} [--limit N] [--cursor C] [--json]

List the StudyInstanceUIDs, sorted, a page at a time (as \`token list\` pages).

  --limit N    UIDs per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})
  --cursor C   the page after the one that printed C
  --json       print the page: { items: [...], nextCursor: string | null }`,
      example: `tokengate ${kind} studies ${kind === 'album' ? 'TEACHING' : 'alice'} --limit 50`,
      options: { limit: str, cursor: str, json },
      positionals: [1, 1],
      precheck: checkName,
      run: async (admin, v, [name], out) => {
        const page = await admin.page(studySetRef(kind, name as string), setPage(v))
        printSetPage(out, v, page, `no studies in ${noun(name as string)}`)
      },
    },
    import: {
      kind: 'studies',
      usage: `usage: tokengate ${kind} import ${arg} FILE [--json]

Bulk-add the StudyInstanceUIDs in FILE (- for standard input): one UID a line (blank lines and
# comments skipped), or DICOM JSON as a QIDO-RS study search returns it (an array of objects
with 0020000D), e.g. curl …/studies?PatientID=123 > studies.json. Nothing is written if a UID
is malformed; the message names its line or item.`,
      example: `tokengate ${kind} import ${kind === 'album' ? 'TEACHING' : 'alice'} studies.json`,
      options: { json },
      positionals: [2, 2],
      precheck: checkName,
      run: async (admin, v, [name, file], out) => {
        const ref = studySetRef(kind, name as string)
        const change = await admin.import(ref, await readInput(file as string))
        printChange(out, v, change, 'added', noun(name as string))
      },
    },
  }
}

export const ALBUM_STUDY_COMMANDS = commandsFor('album')
export const INBOX_COMMANDS = commandsFor('inbox')

export const ALBUM_STUDY_USAGE = `  add-study ALBUM UID…      scoping: studies: add studies to the album
  remove-study ALBUM UID…
  studies ALBUM             list the album's studies
  import ALBUM FILE         add the studies in FILE (UIDs one a line, or a QIDO-RS JSON result)`

export const INBOX_USAGE = `usage: tokengate inbox <command> [options]

commands (scoping: studies: the studies a user's user tokens see with ?inbox=true):
  add-study USER UID…
  remove-study USER UID…
  studies USER              list the inbox's studies
  import USER FILE          add the studies in FILE (UIDs one a line, or a QIDO-RS JSON result)`
