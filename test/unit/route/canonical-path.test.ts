// Path rules (route/canonical-path.ts): a path below a mount read once, re-encoded minimally, and
// refused when some server would read it as a different path (dot segments by other spellings,
// path parameters, controls, double escapes, empty segments).
import t from 'tap'
import { AmbiguousRequest, BadRequest } from '../../../src/errors.js'
import { canonicalPath } from '../../../src/route/canonical-path.js'

t.test('plain paths are returned as they are; escapes are decoded and re-encoded minimally', async (t) => {
  const cases: [string, string][] = [
    ['/', '/'],
    ['/studies/1.2.3/series', '/studies/1.2.3/series'],
    ['/studies/1.2/', '/studies/1.2/'],
    ['/%73tudies/1%2E2', '/studies/1.2'],
    ['/studies/a%20b', '/studies/a%20b'],
    ['/studies/a%2Bb+c', '/studies/a+b+c'],
    ['/x/{y}|"z"', '/x/%7By%7D%7C%22z%22'],
    ['/studies/.well-known', '/studies/.well-known'],
    ['/studies/1.2.', '/studies/1.2.'],
  ]
  for (const [raw, want] of cases) {
    t.equal(canonicalPath(raw), want, raw)
    t.equal(canonicalPath(want), want, `${want} is a fixed point`)
  }
})

t.test('dot segments and separators are bad_path; other readings are ambiguous', async (t) => {
  const cases: [string, typeof BadRequest | typeof AmbiguousRequest, string][] = [
    ['/studies/..', BadRequest, 'bad_path'],
    ['*', BadRequest, 'bad_path'],
    ['http://host/studies', BadRequest, 'bad_path'],
    ['/studies/./x', BadRequest, 'bad_path'],
    ['/studies/%2E%2e/x', BadRequest, 'bad_path'],
    ['/studies/a%2Fb', BadRequest, 'bad_path'],
    ['/studies/a%5cb', BadRequest, 'bad_path'],
    ['/studies/a\\b', BadRequest, 'bad_path'],
    ['/studies/..;/x', AmbiguousRequest, 'path_parameter'],
    ['/studies/.;/x', AmbiguousRequest, 'path_parameter'],
    ['/studies/..%3b/x', AmbiguousRequest, 'path_parameter'],
    ['/studies/%2e%2e%3b/x', AmbiguousRequest, 'path_parameter'],
    ['/studies/..%00/x', AmbiguousRequest, 'control_char'],
    ['/studies/%252e%252e/x', AmbiguousRequest, 'double_encoding'],
    ['/studies/....', AmbiguousRequest, 'dot_segment'],
    ['/studies/.%20./x', AmbiguousRequest, 'dot_segment'],
    ['/studies/%E2%80%A4%E2%80%A4/x', AmbiguousRequest, 'dot_segment'],
    ['/studies/%zz', AmbiguousRequest, 'bad_escape'],
    ['/studies//x', AmbiguousRequest, 'empty_segment'],
    ['/studies/caf\u00e9', AmbiguousRequest, 'non_ascii'],
  ]
  for (const [raw, Cls, reason] of cases) {
    try {
      canonicalPath(raw)
      t.fail(`${raw} should be refused`)
    } catch (err) {
      t.type(err, Cls, raw)
      t.equal((err as BadRequest).reason, reason, `${raw}: ${reason}`)
    }
  }
})
