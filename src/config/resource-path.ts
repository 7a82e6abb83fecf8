// Config, resource rule paths (`mounts[].resources`, issue 13): the one reader of their syntax,
// shared by the schema (problems reported with key and line at load) and route/resources.ts
// (compiled to a regex once per start or reload), so the two can never read a path differently.
//
//   /devices/{id}/resources/**      {id} binds the resource id a grant must cover
//   /departments/{attr.department}  the segment must equal the token's attribute `department`
//   *  one segment, ** any rest (only last); every placeholder is a whole segment

export type PathSegment =
  | { kind: 'literal'; text: string }
  | { kind: 'one' }
  | { kind: 'rest' }
  | { kind: 'id' }
  | { kind: 'attr'; name: string }

const ATTR = /^\{attr\.([A-Za-z0-9_-]{1,64})\}$/
const SPECIAL = /[{}*]/

/** The segments of a resource rule path, or a message saying what to change. */
export function parseResourcePath(path: string): PathSegment[] | string {
  if (!path.startsWith('/')) return 'a rule path starts with "/"'
  if (path === '/') return []
  const out: PathSegment[] = []
  const raw = path.slice(1).split('/')
  const attrs = new Set<string>()
  for (const [i, seg] of raw.entries()) {
    if (seg === '') return `empty segment in "${path}" (no "//", no trailing "/")`
    if (seg === '**') {
      if (i !== raw.length - 1) return `"**" matches the rest of the path: put it last in "${path}"`
      out.push({ kind: 'rest' })
    } else if (seg === '*') out.push({ kind: 'one' })
    else if (seg === '{id}') {
      if (out.some((s) => s.kind === 'id')) return `"{id}" appears twice in "${path}"`
      out.push({ kind: 'id' })
    } else {
      const attr = ATTR.exec(seg)
      if (attr) {
        const name = attr[1] as string
        if (attrs.has(name)) return `"{attr.${name}}" appears twice in "${path}"`
        attrs.add(name)
        out.push({ kind: 'attr', name })
      } else if (SPECIAL.test(seg)) {
        return `segment "${seg}" of "${path}": placeholders are {id}, {attr.NAME}, * and **, each a whole segment`
      } else out.push({ kind: 'literal', text: seg })
    }
  }
  return out
}
