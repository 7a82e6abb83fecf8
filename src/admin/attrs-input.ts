// Admin input, attributes (Q's department, user type…): `--attr key=value` / JSON `attrs` as the
// user and token commands take them. Names and values are checked here once, so whatever is stored
// can be forwarded upstream as a header value and matched by rules without further escaping.
import { AdminInputError } from './input-error.js'

/** An attribute name: a letter, then letters, digits, `_` or `-`; at most 64. */
const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/
/** A value: printable ASCII (a header value as is), at most 256; empty means "remove". */
const VALUE = /^[\x20-\x7e]{0,256}$/
const MAX_ATTRS = 32

/** `key=value` strings (the CLI's repeated `--attr`) → a name/value map; a later key wins. */
export function attrsFromPairs(pairs: readonly string[], flag = '--attr'): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of pairs) {
    const at = pair.indexOf('=')
    if (at <= 0) throw new AdminInputError(`${flag} "${pair}" must be key=value`, 'attrs')
    out[pair.slice(0, at)] = pair.slice(at + 1)
  }
  return out
}

/**
 * Check an attribute map. Empty values are kept (they mean "remove this attribute" where a map is
 * merged over another); `checkAttrs` never drops them itself.
 */
export function checkAttrs(attrs: Readonly<Record<string, string>>): Record<string, string> {
  const names = Object.keys(attrs)
  if (names.length > MAX_ATTRS)
    throw new AdminInputError(`at most ${MAX_ATTRS} attributes are allowed, got ${names.length}`, 'attrs')
  for (const name of names) {
    if (!NAME.test(name))
      throw new AdminInputError(
        `attribute name "${name.replace(/[^\x20-\x7e]/g, '?')}" must be a letter then up to 63 letters, digits, _ or -`,
        'attrs',
      )
    const value = attrs[name] as string
    if (typeof value !== 'string' || !VALUE.test(value))
      throw new AdminInputError(
        `attribute ${name}: the value must be at most 256 printable ASCII characters (it is sent as a header)`,
        'attrs',
      )
  }
  return { ...attrs }
}

/** `over` merged onto `base`; an empty value in `over` removes the attribute. */
export function mergeAttrs(
  base: Readonly<Record<string, string>>,
  over: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = { ...base }
  for (const [name, value] of Object.entries(over)) {
    if (value === '') delete out[name]
    else out[name] = value
  }
  return out
}
