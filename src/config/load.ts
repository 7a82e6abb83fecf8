// Config loading: read the YAML file (keeping node positions), replace ${VAR} from the environment,
// validate against the schema, and report every problem with its key and line. Start-up, reload
// and `tokengate check-config` all come through here.
import { readFile } from 'node:fs/promises'
import { isMap, isScalar, LineCounter, type Node, parseDocument, visit } from 'yaml'
import type { z } from 'zod'
import { ConfigError } from '../errors.js'
import { type Config, configSchema } from './schema.js'
import { checkTlsFiles } from './tls-files.js'

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

function keyPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p)
  return out || '(top level)'
}

/**
 * Parse and validate config text. `source` names the file in messages. Throws ConfigError whose
 * `problems` each read like `tokengate.yaml:12: cache.ttl: expected a duration like "30s"…`.
 */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const problems: string[] = []
  const lineOf = (node: Node | null | undefined): string => {
    const offset = node?.range?.[0]
    return offset === undefined ? source : `${source}:${lineCounter.linePos(offset).line}`
  }
  for (const err of doc.errors) {
    // prettyErrors is off, so linePos is not filled in: count the line from the offset.
    const line = err.linePos?.[0]?.line ?? lineCounter.linePos(err.pos[0]).line
    problems.push(`${source}${line ? `:${line}` : ''}: YAML: ${err.message.split('\n')[0]}`)
  }
  if (problems.length) throw new ConfigError(problems.join('\n'), problems)

  // ${VAR} and ${VAR:-default} in scalar values; positions stay those of the file.
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return
      node.value = node.value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
        const value = env[name]
        if (value !== undefined && value !== '') return value
        if (fallback !== undefined) return fallback
        const keys = path.filter((p) => 'key' in p && isScalar((p as { key: unknown }).key))
        const at = keys.map((p) =>
          String(((p as { key: { value: unknown } }).key as { value: unknown }).value),
        )
        problems.push(`${lineOf(node)}: ${at.join('.') || 'value'}: environment variable ${name} is not set`)
        return ''
      })
      // An interpolated number (e.g. port: ${PORT}) becomes a number, as if written literally;
      // a quoted one ("${PACS_PASSWORD}") stays a string, as a quoted literal would.
      if (node.type === 'PLAIN' && /^\d+$/.test(String(node.value))) node.value = Number(node.value)
    },
  })
  if (problems.length) throw new ConfigError(problems.join('\n'), problems)

  // A map entry's own line, that of its key (its value may start on the next one, e.g. a nested
  // map); a list item's line; undefined when the document has nothing at `at`.
  const nodeAt = (at: (string | number)[]): Node | undefined => {
    const parent = at.length > 1 ? doc.getIn(at.slice(0, -1), true) : doc.contents
    const pair = isMap(parent)
      ? parent.items.find((p) => isScalar(p.key) && p.key.value === at.at(-1))
      : undefined
    const node = (pair?.key ?? doc.getIn(at, true)) as Node | undefined
    return node && 'range' in node ? node : undefined
  }

  const result = configSchema.safeParse(doc.toJS() ?? {})
  if (result.success) return result.data
  for (const issue of result.error.issues as z.core.$ZodIssue[]) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const at = [...issue.path, key] as (string | number)[]
        problems.push(`${lineOf(nodeAt(at))}: ${keyPath(at)}: unknown key (check its spelling)`)
      }
      continue
    }
    // Point at the deepest node that exists: a missing key is reported at its parent.
    let node: Node | null | undefined
    for (let n = issue.path.length; n > 0 && !node; n--) {
      node = nodeAt(issue.path.slice(0, n) as (string | number)[])
    }
    node ??= doc.contents
    let message = issue.message
    // zod 4 leaves `input` out of issues unless asked, so ask the document whether the key is there.
    if (issue.code === 'invalid_type' && !doc.hasIn(issue.path as (string | number)[]))
      message = `is required (${issue.message})`
    problems.push(`${lineOf(node)}: ${keyPath(issue.path)}: ${message}`)
  }
  throw new ConfigError(problems.join('\n'), problems)
}

/** Read and validate a config file. Throws ConfigError (unreadable file included). */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new ConfigError(`${path}: cannot read the config file (${code})`)
  }
  const config = parseConfig(text, path, env)
  // TLS files are read at start and on SIGHUP: say now which key names a file that is not there.
  const problems = await checkTlsFiles(config)
  if (problems.length)
    throw new ConfigError(
      problems.join('\n'),
      problems.map((p) => `${path}: ${p}`),
    )
  return config
}
