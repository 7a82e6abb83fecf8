// Generated inputs: WADO-URI queries whose parameter names are near-spellings of the reserved
// ones (case flips, percent-encoding once or twice, spaces, `+`, control bytes, brackets) beside
// exact ones, with visible, foreign and malformed UID values. Invariants: readWadoUids (after the one
// query parser) fails only with a 400 (never a 5xx); and when it accepts a query, no common way of reading a
// query — exact names, names decoded once (URLSearchParams, Orthanc), trimmed, case-folded,
// decoded twice with brackets stripped (Express `qs`, PHP) — finds a study, series or instance
// UID there other than the one tokengate read. 300 cases in npm test; `npm run test:fuzz` (TG_FUZZ_RUNS=10000) for the full run.
import t from 'tap'
import { GateError, toHttpError } from '../../src/errors.js'
import { parseQuery } from '../../src/rewrite/canonical-query.js'
import { readWadoUids, type WadoUids } from '../../src/rewrite/wado-query.js'
import { chance, forAll, int, percentSome, pick, type Rng, runs } from '../helpers/generate.js'

const KEYS = { studyUID: 'study', seriesUID: 'series', objectUID: 'object' } as const
type Key = keyof typeof KEYS
const VISIBLE = '1.2.840.99.1'
const FOREIGN = '1.2.840.99.7'

function mutateName(rng: Rng, base: string): string {
  let name = base
  if (chance(rng, 0.3)) name = [...name].map((c) => (chance(rng, 0.3) ? c.toUpperCase() : c)).join('')
  if (chance(rng, 0.3)) name = percentSome(rng, name)
  if (chance(rng, 0.1)) name = name.replace(/%/g, '%25')
  if (chance(rng, 0.2)) name = pick(rng, ['+', '%20', ' ', '%00', '%09', '%2B']) + name
  if (chance(rng, 0.2)) name += pick(rng, ['+', '%20', '[]', '%5B%5D', '%00', '%0A'])
  return name
}

function query(rng: Rng): string {
  const pairs: string[] = []
  for (let n = int(rng, 1, 6); n > 0; n--) {
    const base = pick(rng, ['studyUID', 'seriesUID', 'objectUID', 'requestType', 'contentType', 'study'])
    const name = chance(rng, 0.5) ? base : mutateName(rng, base)
    const value = pick(rng, [VISIBLE, FOREIGN, `${VISIBLE}.5`, 'WADO', '1.2%2E3', '+1.2', '', 'image%2Fjpeg'])
    pairs.push(chance(rng, 0.05) ? name : `${name}=${value}`)
  }
  return pairs.join('&')
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    return text
  }
}

/** Ways a server may map a raw parameter name to a reserved name. */
const READERS: [string, (raw: string) => string][] = [
  ['exact', (raw) => raw],
  ['decoded once', (raw) => decode(raw)],
  ['decoded, trimmed', (raw) => decode(raw).trim()],
  ['decoded, trimmed, folded', (raw) => decode(raw).trim().toLowerCase()],
  ['twice, brackets, folded', (raw) => decode(decode(raw)).replace(/\[\]$/, '').trim().toLowerCase()],
  ['controls dropped', (raw) => dropControls(decode(raw)).toLowerCase()],
]

/** What some parsers make of a name: control bytes and white space dropped. */
function dropControls(text: string): string {
  return [...text].filter((c) => c.charCodeAt(0) > 0x20).join('')
}

/** Every (reader, key, value) some reader finds in `q` that differs from what tokengate read. */
function disagreements(q: string, ours: WadoUids): string[] {
  const out: string[] = []
  for (const pair of q.split('&')) {
    const eq = pair.indexOf('=')
    const raw = eq === -1 ? pair : pair.slice(0, eq)
    const value = decode(eq === -1 ? '' : pair.slice(eq + 1)).trim()
    for (const [reader, read] of READERS) {
      const name = read(raw)
      for (const key of Object.keys(KEYS) as Key[]) {
        const matches =
          reader.includes('folded') || reader === 'controls dropped'
            ? name === key.toLowerCase()
            : name === key
        if (matches && ours[KEYS[key]] !== value) out.push(`${reader} reads ${key}=${value} in ${pair}`)
      }
    }
  }
  return out
}

t.test('generated WADO-URI queries: a 400 or one reading every parser shares', async (t) => {
  const count = runs('TG_FUZZ_RUNS', 300)
  let accepted = 0
  let refused = 0
  await forAll(count, (rng) => {
    const q = query(rng)
    let ours: WadoUids
    try {
      ours = readWadoUids(parseQuery(q))
    } catch (err) {
      if (!(err instanceof GateError) || toHttpError(err).status !== 400) throw err
      refused++
      return
    }
    accepted++
    const differ = disagreements(q, ours)
    if (differ.length) throw new Error(`${q}: ${differ.join('; ')}`)
  })
  t.ok(accepted > count / 10, `some queries were accepted (${accepted})`)
  t.ok(refused > count / 10, `some were refused (${refused})`)
})
