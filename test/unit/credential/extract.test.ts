// Credential extraction: exactly one of Bearer, Basic (password = token) or /link/<t>/, hashed
// here so the secret never leaves the module. Requests are plain objects shaped like Node's.
import { createHash } from 'node:crypto'
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'
import { type CredentialSource, extractCredential } from '../../../src/credential/extract.js'
import { mintSecret, type SecretPolicy } from '../../../src/credential/secret.js'
import {
  AmbiguousCredential,
  type GateError,
  InvalidToken,
  MalformedCredential,
  MissingCredential,
} from '../../../src/errors.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { matchRoute } from '../../../src/route/match.js'

const routes = compileRoutes(
  configSchema.parse({ mounts: [{ path: '/api', upstream: 'http://pacs/dicom-web' }] }),
)
const policy: SecretPolicy = { prefix: 'tg_', allowLegacy: true }
const strict: SecretPolicy = { prefix: 'tg_', allowLegacy: false }
const minted = mintSecret('tg_')
const other = mintSecret('tg_')
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

/** A request as Node presents it: `headers` keeps the first Authorization, `rawHeaders` all of them. */
function request(url: string, authorization: string[] = []): CredentialSource & { url: string } {
  const rawHeaders = ['Host', 'pacs.example']
  for (const value of authorization) rawHeaders.push('Authorization', value)
  return {
    url,
    rawUrl: url,
    rawHeaders,
    headers: {
      host: 'pacs.example',
      ...(authorization[0] !== undefined ? { authorization: authorization[0] } : {}),
    },
  }
}

function extract(url: string, authorization: string[] = [], p: SecretPolicy = policy) {
  const req = request(url, authorization)
  return extractCredential(req, matchRoute(routes, 'GET', url), p)
}

/** The GateError thrown by `fn`, so a test can check class and reason in one line each. */
function thrown(fn: () => unknown): GateError {
  try {
    fn()
  } catch (err) {
    return err as GateError
  }
  throw new Error('expected a throw')
}

t.test(
  'a Bearer token is accepted whatever the case of the scheme, and hashed with sha256 hex',
  async (t) => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const c = extract('/api/studies', [`${scheme} ${minted}`])
      t.equal(c.via, 'bearer', `${scheme}: via bearer`)
      t.equal(c.hash, sha256(minted), `${scheme}: hash`)
    }
    t.equal(
      extract('/api/studies', [`  Bearer    ${minted}  `]).hash,
      sha256(minted),
      'extra spaces are trimmed',
    )
    t.match(extract('/api/studies', [`Bearer ${minted}`]).hash, /^[0-9a-f]{64}$/, 'sha256 is 64 hex chars')
  },
)

t.test('a Basic credential ignores the user name and takes the password as the token', async (t) => {
  for (const user of ['', 'anything', 'token', 'ünïcode']) {
    const c = extract('/api/studies', [`Basic ${b64(`${user}:${minted}`)}`])
    t.equal(c.via, 'basic', `user ${JSON.stringify(user)}: via basic`)
    t.equal(c.hash, sha256(minted), `user ${JSON.stringify(user)}: hash of the password`)
  }
  t.equal(extract('/api/studies', [`basic ${b64(`u:${minted}`)}`]).via, 'basic', 'scheme in any case')
})

t.test('Basic splits at the first colon, so a legacy token containing ":" survives whole', async (t) => {
  const legacy = 'legacy:token:with:colons'
  const c = extract('/api/studies', [`Basic ${b64(`user:${legacy}`)}`])
  t.equal(c.hash, sha256(legacy))
  t.not(c.hash, sha256('colons'), 'not the part after the last colon')
})

t.test('a /link/<t>/ credential is read from the raw URL at the route offsets', async (t) => {
  const c = extract(`/api/link/${minted}/studies?limit=1`)
  t.equal(c.via, 'link')
  t.equal(c.hash, sha256(minted))
  const legacy = 'legacy~token.with-dots'
  t.equal(extract(`/api/link/${encodeURIComponent(legacy)}/studies`).hash, sha256(legacy))
  t.equal(
    extract('/api/link/legacy%3Atoken%3Aabc/studies').hash,
    sha256('legacy:token:abc'),
    'percent-decoded',
  )
  const bad = thrown(() => extract('/api/link/legacy%zztoken/studies'))
  t.type(bad, MalformedCredential, 'an undecodable link segment is malformed')
  t.equal(bad.reason, 'bad_link')
})

t.test('the same secret sent twice (header and link, or two headers) is one credential', async (t) => {
  const cases: [string, string, string[]][] = [
    ['Bearer + link', `/api/link/${minted}/studies`, [`Bearer ${minted}`]],
    ['Basic + link', `/api/link/${minted}/studies`, [`Basic ${b64(`x:${minted}`)}`]],
    ['Bearer twice', '/api/studies', [`Bearer ${minted}`, `Bearer ${minted}`]],
    ['Bearer + Basic', '/api/studies', [`Bearer ${minted}`, `Basic ${b64(`x:${minted}`)}`]],
  ]
  for (const [name, url, auth] of cases) {
    t.equal(extract(url, auth).hash, sha256(minted), name)
  }
})

t.test('two different credentials are AmbiguousCredential two_credentials', async (t) => {
  const cases: [string, string, string[]][] = [
    ['Bearer + link', `/api/link/${other}/studies`, [`Bearer ${minted}`]],
    ['Basic + link', `/api/link/${other}/studies`, [`Basic ${b64(`x:${minted}`)}`]],
    ['repeated Authorization headers', '/api/studies', [`Bearer ${minted}`, `Bearer ${other}`]],
    ['Bearer then Basic', '/api/studies', [`Bearer ${minted}`, `Basic ${b64(`x:${other}`)}`]],
  ]
  for (const [name, url, auth] of cases) {
    const err = thrown(() => extract(url, auth))
    t.type(err, AmbiguousCredential, name)
    t.equal(err.reason, 'two_credentials', `${name}: reason`)
  }
})

t.test('repeated Authorization headers are all seen, whatever the case of their names', async (t) => {
  const req: CredentialSource = {
    rawUrl: '/api/studies',
    headers: { authorization: `Bearer ${minted}` },
    rawHeaders: ['authorization', `Bearer ${minted}`, 'AUTHORIZATION', `Bearer ${other}`],
  }
  const err = thrown(() => extractCredential(req, matchRoute(routes, 'GET', '/api/studies'), policy))
  t.type(err, AmbiguousCredential)
})

t.test('malformed credentials are MalformedCredential with the reason that says which', async (t) => {
  const cases: [string, string, string][] = [
    ['empty Bearer', 'Bearer ', 'empty_secret'],
    ['Bearer alone', 'Bearer', 'empty_secret'],
    ['Bearer with two words', `Bearer ${minted} extra`, 'bad_scheme'],
    ['empty Basic password', `Basic ${b64('user:')}`, 'empty_secret'],
    ['Basic with only a colon', `Basic ${b64(':')}`, 'empty_secret'],
    ['Basic without a colon', `Basic ${b64(minted)}`, 'bad_base64'],
    ['Basic not base64', 'Basic !!!notbase64!!!', 'bad_base64'],
    [
      'Basic base64url alphabet',
      `Basic ${Buffer.from(`u:${minted}??>>`).toString('base64url')}`,
      'bad_base64',
    ],
    ['Basic without padding', 'Basic dTphYmM', 'bad_base64'],
    ['Basic empty', 'Basic ', 'bad_base64'],
    ['Digest scheme', 'Digest username="u", realm="r"', 'bad_scheme'],
    ['Token scheme', `Token ${minted}`, 'bad_scheme'],
    ['no scheme', minted, 'bad_scheme'],
    ['empty header', '', 'bad_scheme'],
  ]
  for (const [name, header, reason] of cases) {
    const err = thrown(() => extract('/api/studies', [header]))
    t.type(err, MalformedCredential, name)
    t.equal(err.reason, reason, `${name}: ${reason}`)
  }
})

t.test('no credential at all is MissingCredential none', async (t) => {
  const err = thrown(() => extract('/api/studies'))
  t.type(err, MissingCredential)
  t.equal(err.reason, 'none')
})

t.test(
  'a minted secret with one character flipped is InvalidToken bad_checksum, with no store',
  async (t) => {
    const body = minted.slice(3)
    const i = 5
    const flipped = `tg_${body.slice(0, i)}${body[i] === 'A' ? 'B' : 'A'}${body.slice(i + 1)}`
    for (const auth of [`Bearer ${flipped}`, `Basic ${b64(`u:${flipped}`)}`]) {
      const err = thrown(() => extract('/api/studies', [auth]))
      t.type(err, InvalidToken, auth.split(' ')[0] as string)
      t.equal(err.reason, 'bad_checksum')
    }
    const viaLink = thrown(() => extract(`/api/link/${flipped}/studies`))
    t.type(viaLink, InvalidToken, 'link')
    t.equal(viaLink.reason, 'bad_checksum')
  },
)

t.test('a legacy secret (no prefix) is accepted only when allowLegacy is on', async (t) => {
  const legacy = 'a1b2c3d4e5f6g7h8'
  t.equal(extract('/api/studies', [`Bearer ${legacy}`], policy).hash, sha256(legacy), 'allowLegacy: accepted')
  const err = thrown(() => extract('/api/studies', [`Bearer ${legacy}`], strict))
  t.type(err, InvalidToken, 'allowLegacy off: refused')
  t.equal(err.reason, 'bad_checksum')
  t.equal(extract('/api/studies', [`Bearer ${minted}`], strict).hash, sha256(minted), 'minted still accepted')
})

t.test('the credential carries only how it came and the hash, never the secret', async (t) => {
  const c = extract(`/api/link/${minted}/studies`, [`Bearer ${minted}`])
  t.same(Object.keys(c).sort(), ['hash', 'via'])
  t.notMatch(JSON.stringify(c), minted.slice(3))
})

t.test(
  'the request token also in the query string is refused: it would go upstream and into logs',
  async (t) => {
    for (const url of [
      `/api/studies?access_token=${minted}`,
      `/api/studies?limit=1&x=${encodeURIComponent(minted)}`,
      `/api/link/${minted}/studies?again=${minted}`,
    ]) {
      const err = thrown(() => extract(url, url.includes('/link/') ? [] : [`Bearer ${minted}`]))
      t.ok(err instanceof MalformedCredential, url.replace(minted, '<t>'))
      t.equal(err.reason, 'secret_in_query')
    }
    t.equal(
      extract(`/api/studies?limit=1&x=${other}`, [`Bearer ${minted}`]).hash,
      sha256(minted),
      'another string is fine',
    )
  },
)
