// Secrets: the minted format, the checksum that refuses typos and garbage before any store call,
// hashing, and link redaction for logs.
import { createHash } from 'node:crypto'
import t from 'tap'
import { hashSecret, mintSecret, redactLink, verifySecret } from '../../../src/credential/secret.js'
import { type GateError, InvalidToken, MalformedCredential } from '../../../src/errors.js'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const strict = { prefix: 'tg_', allowLegacy: false }
const lenient = { prefix: 'tg_', allowLegacy: true }

function thrown(fn: () => unknown): GateError | undefined {
  try {
    fn()
  } catch (err) {
    return err as GateError
  }
  return undefined
}

t.test(
  'a minted secret is the prefix, 32 base64url chars of 24 random bytes, and a 6-char checksum',
  async (t) => {
    for (const prefix of ['tg_', 'acme9_']) {
      const s = mintSecret(prefix)
      t.ok(s.startsWith(prefix), `${prefix}: starts with the prefix`)
      t.equal(s.length, prefix.length + 32 + 6, `${prefix}: length`)
      t.match(s.slice(prefix.length), /^[A-Za-z0-9_-]{38}$/, `${prefix}: URL-safe without escaping`)
      t.equal(encodeURIComponent(s), s, `${prefix}: needs no percent-encoding in a URL`)
      t.equal(
        Buffer.from(s.slice(prefix.length, prefix.length + 32), 'base64url').length,
        24,
        '192 random bits',
      )
      t.notMatch(s, /:/, 'no colon, so Basic user:token splits cleanly')
    }
  },
)

t.test('minted secrets do not repeat', async (t) => {
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i++) seen.add(mintSecret('tg_'))
  t.equal(seen.size, 2000)
  const bodies = new Set([...seen].map((s) => s.slice(3, 3 + 8)))
  t.ok(bodies.size > 1990, 'even their first 48 bits are (nearly) all distinct')
})

t.test('verifySecret accepts its own output and returns the sha256 hex of the whole secret', async (t) => {
  for (let i = 0; i < 50; i++) {
    const s = mintSecret('tg_')
    t.equal(verifySecret(s, strict), createHash('sha256').update(s).digest('hex'))
  }
  const custom = mintSecret('acme_')
  t.equal(verifySecret(custom, { prefix: 'acme_', allowLegacy: false }), hashSecret(custom), 'any prefix')
})

t.test('every single-character substitution after the prefix is InvalidToken bad_checksum', async (t) => {
  let checked = 0
  let refused = 0
  let unchanged = 0
  for (let n = 0; n < 20; n++) {
    const s = mintSecret('tg_')
    for (let i = 3; i < s.length; i++) {
      // Four replacement characters per position, spread over the alphabet.
      for (let k = 1; k <= 4; k++) {
        const from = ALPHABET.indexOf(s[i] as string)
        const ch = ALPHABET[(from + k * 15) % ALPHABET.length] as string
        const mutated = `${s.slice(0, i)}${ch}${s.slice(i + 1)}`
        if (mutated === s) unchanged++
        for (const policy of [strict, lenient]) {
          checked++
          const err = thrown(() => verifySecret(mutated, policy))
          if (err instanceof InvalidToken && err.reason === 'bad_checksum') refused++
        }
      }
    }
  }
  t.equal(checked, 20 * 38 * 4 * 2)
  t.equal(unchanged, 0, 'every sample really differs from the minted secret')
  t.equal(refused, checked, 'all refused, with or without legacy secrets')
})

t.test(
  'a mutated prefix is refused when legacy is off, and is just another (unknown) legacy secret when on',
  async (t) => {
    const s = mintSecret('tg_')
    for (const mutated of [`tx_${s.slice(3)}`, `Tg_${s.slice(3)}`, `tg-${s.slice(3)}`]) {
      const err = thrown(() => verifySecret(mutated, strict))
      t.type(err, InvalidToken, `${mutated.slice(0, 3)}: refused without legacy`)
      t.equal(err?.reason, 'bad_checksum')
      t.equal(verifySecret(mutated, lenient), hashSecret(mutated), `${mutated.slice(0, 3)}: legacy form`)
      t.not(verifySecret(mutated, lenient), hashSecret(s), 'never the hash of the real secret')
    }
  },
)

t.test(
  'a prefixed secret of the wrong length or alphabet is bad_checksum, even with legacy on',
  async (t) => {
    const s = mintSecret('tg_')
    const cases = [
      s.slice(0, -1),
      `${s}A`,
      `${s.slice(0, 10)}+${s.slice(11)}`,
      `${s.slice(0, 10)}.${s.slice(11)}`,
      'tg_',
    ]
    for (const bad of cases) {
      const err = thrown(() => verifySecret(bad, lenient))
      t.type(err, InvalidToken, JSON.stringify(bad))
      t.equal(err?.reason, 'bad_checksum')
    }
  },
)

t.test('legacy secrets: 8 to 512 URL-safe characters, only when allowLegacy', async (t) => {
  const cases: [string, boolean][] = [
    ['abcdefgh', true],
    ['abcdefg', false],
    ['a'.repeat(512), true],
    ['a'.repeat(513), false],
    ['Legacy.Token~with+base64/chars==', true],
    ['legacy:token:with:colons', true],
    ['has space inside', false],
    ['quote"inside', false],
    ['ünïcödé-token', false],
  ]
  for (const [secret, ok] of cases) {
    const label = `${JSON.stringify(secret.length > 20 ? `${secret.slice(0, 20)}…` : secret)}`
    if (ok) t.equal(verifySecret(secret, lenient), hashSecret(secret), `${label} accepted`)
    else t.equal(thrown(() => verifySecret(secret, lenient))?.reason, 'bad_checksum', `${label} refused`)
    t.equal(
      thrown(() => verifySecret(secret, strict))?.reason,
      'bad_checksum',
      `${label} refused without legacy`,
    )
  }
})

t.test('an empty secret is MalformedCredential empty_secret', async (t) => {
  const err = thrown(() => verifySecret('', lenient))
  t.type(err, MalformedCredential)
  t.equal(err?.reason, 'empty_secret')
})

t.test('hashSecret is the lower-case sha256 hex of the UTF-8 secret', async (t) => {
  t.equal(hashSecret('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  t.match(hashSecret(mintSecret('tg_')), /^[0-9a-f]{64}$/)
})

t.test('redactLink hides every /link/<secret> segment and nothing else', async (t) => {
  const s = mintSecret('tg_')
  const cases: [string, string][] = [
    [`/api/link/${s}/studies?limit=1`, '/api/link/<redacted>/studies?limit=1'],
    [`/api/link/${s}`, '/api/link/<redacted>'],
    [`/api/link/${s}?x=1`, '/api/link/<redacted>?x=1'],
    [`/a/link/${s}/b/link/${s}/c`, '/a/link/<redacted>/b/link/<redacted>/c'],
    ['/api/link//studies', '/api/link/<redacted>/studies'],
    [`/api/link/${s}#${s}/studies`, '/api/link/<redacted>/studies'],
    ['/api/studies/1.2?includefield=all', '/api/studies/1.2?includefield=all'],
    ['/api/linked/studies', '/api/linked/studies'],
  ]
  for (const [input, want] of cases) {
    const out = redactLink(input)
    t.equal(out, want, want)
    t.notMatch(out, s.slice(3), 'no secret left')
  }
})

t.test(
  'with tokens.checksumKey, minted secrets carry a keyed checksum a forger cannot compute',
  async (t) => {
    const key = 'k'.repeat(32)
    const keyed = { prefix: 'tg_', allowLegacy: false, checksumKeys: [key], allowUnkeyed: false }
    const secret = mintSecret('tg_', key)
    t.equal(verifySecret(secret, keyed), hashSecret(secret), 'a keyed secret passes under its key')
    t.equal(secret.length, 3 + 32 + 6, 'the same length as an unkeyed one')
    // A forger knows the format: body + plain sha256 checksum.
    const forged = mintSecret('tg_')
    t.match(
      thrown(() => verifySecret(forged, keyed)),
      { reason: 'bad_checksum' },
      'refused without a lookup',
    )
    t.match(
      thrown(() => verifySecret(secret, { ...keyed, checksumKeys: ['o'.repeat(32)] })),
      { reason: 'bad_checksum' },
      'another key refuses it',
    )
    t.equal(
      verifySecret(forged, { ...keyed, allowUnkeyed: true }),
      hashSecret(forged),
      'allowUnkeyed: old secrets pass',
    )
    t.match(
      thrown(() => verifySecret(secret, strict)),
      { reason: 'bad_checksum' },
      'no key: a keyed secret fails',
    )
  },
)

t.test('a rotated checksum key keeps its secrets working while listed as previous', async (t) => {
  const oldKey = 'o'.repeat(32)
  const newKey = 'n'.repeat(32)
  const before = mintSecret('tg_', oldKey)
  const after = mintSecret('tg_', newKey)
  const rotated = { prefix: 'tg_', allowLegacy: false, checksumKeys: [newKey, oldKey], allowUnkeyed: false }
  t.equal(verifySecret(before, rotated), hashSecret(before))
  t.equal(verifySecret(after, rotated), hashSecret(after))
  t.match(
    thrown(() => verifySecret(before, { ...rotated, checksumKeys: [newKey] })),
    { reason: 'bad_checksum' },
    'once the old key is dropped, its secrets fail',
  )
})
