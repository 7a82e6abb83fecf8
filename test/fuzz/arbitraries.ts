// Generators and independent re-parsers shared by the property-based suites. Inputs are built
// from fragments an attacker would combine (reserved names in many spellings, separators, escapes
// of escapes, controls, brackets, dots) mixed with arbitrary characters, so a few thousand runs
// reach the corners a uniform generator would not. `TG_FUZZ_RUNS` sets the runs per property
// (npm test: 1,000; npm run test:fuzz: 10,000).
import fc from 'fast-check'
import qs from 'qs'
import { GateError, toHttpError } from '../../src/errors.js'
import { nameSkeleton } from '../../src/rewrite/canonical-query.js'

export const RUNS = Number(process.env.TG_FUZZ_RUNS ?? 1000)
/** fast-check parameters: the run count, and a seed from the environment to replay a failure. */
export const params = {
  numRuns: RUNS,
  ...(process.env.TG_FUZZ_SEED ? { seed: Number(process.env.TG_FUZZ_SEED) } : {}),
}

const NAME_PARTS = [
  'album',
  'ALBUM',
  'Album',
  'inbox',
  'InBox',
  'accept',
  'Accept',
  'studyUID',
  'StudyUID',
  'seriesUID',
  'objectUID',
  'StudyInstanceUID',
  'studyinstanceuid',
  '0020000D',
  '0020000d',
  '0020,000D',
  '0020-000D',
  '(0020,000D)',
  '0x0020000D',
  'limit',
  'offset',
  'PatientName',
  'includefield',
  'x',
  'a',
  'b',
  '%61',
  '%61lbum',
  'alb%75m',
  '%2561',
  '%25',
  '%',
  '%zz',
  '%C3',
  '%C3%A9',
  '%C5%BF',
  '%C4%B1',
  '%EF%BD%81',
  '[',
  ']',
  '[]',
  '%5B',
  '%5D',
  '.',
  '+',
  '%20',
  '%00',
  '%0a',
  '%09',
  '%7f',
  '%C2%85',
  '%2B',
  '%26',
  '%3D',
  '%3B',
  '%23',
  '%3F',
  '_',
  '-',
  ',',
  '(',
  ')',
  ' ',
  '\t',
  'é',
  'ſ',
  'İ',
  '\u00ad',
  '\u200b',
]
const VALUE_PARTS = [
  'A1',
  'A2',
  'B',
  'true',
  'TRUE',
  'false',
  'application/zip',
  'application%2Fzip',
  'application%252Fzip',
  'APPLICATION/ZIP',
  'application/x-zip',
  '1.2.3',
  '1.2,1.3',
  '*',
  '',
  '+',
  '%2B',
  '%20',
  '%00',
  '%zz',
  '%25',
  '=',
  '&',
  ';',
  '#',
  '?',
  '/',
  '%2F',
  '%3B',
  '%26',
  '%3D',
  '%23',
  'é',
  '%C3%A9',
  'tg_',
]
const SEPARATORS = ['&', '&', '&', '&&', ';', '#', '=', '?', '%26', '%3B']

const piece = (parts: readonly string[]) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...parts) },
    { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) },
  )
const joined = (parts: readonly string[], max: number) =>
  fc.array(piece(parts), { maxLength: max }).map((a) => a.join(''))

/** One `name=value` pair (or a bare name), built from adversarial fragments. */
export const pairArb = fc
  .tuple(joined(NAME_PARTS, 4), fc.boolean(), joined(VALUE_PARTS, 3))
  .map(([n, eq, v]) => (eq ? `${n}=${v}` : n))

const adversarialQuery = fc
  .array(fc.tuple(pairArb, fc.constantFrom(...SEPARATORS)), { maxLength: 6 })
  .map((pairs) => pairs.map(([p, s], i) => (i === pairs.length - 1 ? p : p + s)).join(''))

/** Any text, percent-encoded as a client library would (sometimes `+` for spaces). */
const encodedText = fc
  .tuple(fc.string({ unit: 'grapheme', maxLength: 12 }), fc.boolean())
  .map(([text, plus]) => (plus ? encodeURIComponent(text).replace(/%20/g, '+') : encodeURIComponent(text)))

// Well-formed queries (reserved names exactly, any encoded text), so that most generated inputs
// are accepted and the invariants on what is forwarded are checked on thousands of them.
const wellFormedQuery = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom('album', 'inbox', 'accept', 'StudyInstanceUID', '0020000D', 'limit', 'PatientName'),
        fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/),
        encodedText,
      ),
      encodedText,
    ),
    { maxLength: 6 },
  )
  .map((pairs) => pairs.map(([n, v]) => `${n}=${v}`).join('&'))

/** A raw query string (no leading `?`): adversarial fragments, or well-formed pairs. */
export const queryArb = fc.oneof(adversarialQuery, wellFormedQuery)

const SEGMENT_PARTS = [
  '.',
  '..',
  '%2e',
  '%2E',
  '%2e%2e',
  '%252e',
  '%25',
  ';',
  '%3b',
  '%3B',
  '%00',
  '%0a',
  '%20',
  ' ',
  '\\',
  '%5c',
  '%2f',
  '%252f',
  'studies',
  '%73tudies',
  '1.2.3',
  'series',
  'metadata',
  'wado',
  'link',
  '%',
  '%zz',
  '%C3',
  '%EF%BC%8E',
  '~',
  '+',
  '%2B',
  'é',
  '#',
  '?',
  '{',
  '}',
]
const adversarialPath = fc
  .array(joined(SEGMENT_PARTS, 3), { minLength: 1, maxLength: 6 })
  .chain((segs) => fc.constantFrom('/', '//').map((sep) => `/${segs.join(sep)}`))

const wellFormedPath = fc
  .array(
    fc.oneof(
      fc.constantFrom('studies', 'series', 'instances', '1.2.840.10008.1', 'metadata', 'wado', 'rendered'),
      encodedText.filter((s) => s !== ''),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((segs) => `/${segs.join('/')}`)

/** A raw path below a mount (starts with `/`): adversarial fragments, or well-formed segments. */
export const pathArb = fc.oneof(adversarialPath, wellFormedPath)

// ── independent readers of a forwarded query ───────────────────────────────────────────────

/** Names as WHATWG URLSearchParams reads them (Node's own parser). */
export function whatwgNames(query: string): string[] {
  return [...new URLSearchParams(query).keys()]
}

/** Top-level keys as Express's `qs` reads them (brackets, depth, dots off by default). */
export function qsNames(query: string): string[] {
  return Object.keys(qs.parse(query, { depth: 5, parameterLimit: 10_000 }))
}

/** Names as an old CGI parser reads them: `;` and `&` both separate, names decoded twice. */
export function semicolonNames(query: string): string[] {
  const out: string[] = []
  for (const part of query.split(/[;&]/)) {
    if (part === '') continue
    let name = (part.split('=')[0] ?? '').replace(/\+/g, ' ')
    for (let i = 0; i < 2; i++) {
      try {
        name = decodeURIComponent(name)
      } catch {
        break
      }
    }
    out.push(name)
  }
  return out
}

/** Every name any of the three readers sees whose skeleton is that of a reserved name. */
export function scopeLikeNames(query: string, skeletons: readonly string[]): string[] {
  const all = [...whatwgNames(query), ...qsNames(query), ...semicolonNames(query)]
  return all.filter((n) => skeletons.includes(nameSkeleton(n)))
}

/** Run `fn`: its value, or null when it refused with a 4xx GateError; a 5xx or any other throw fails. */
export function refusedOr<T>(fn: () => T): T | null {
  try {
    return fn()
  } catch (err) {
    if (!(err instanceof GateError)) throw err
    if (toHttpError(err).status >= 500) throw new Error(`5xx for ${err.reason}`)
    return null
  }
}
