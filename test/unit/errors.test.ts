import t from 'tap'
import { InvalidToken, toHttpError } from '../../src/errors.js'

t.test('an expired token maps to 401 invalid_token with the RFC 6750 challenge and no reason leak', async (t) => {
  const e = toHttpError(new InvalidToken('expired'))
  t.equal(e.status, 401)
  t.equal(e.body.error, 'invalid_token')
  t.equal(e.headers['www-authenticate'], 'Bearer realm="tokengate", error="invalid_token"')
  t.notMatch(e.body.reason, /expired/)
  t.equal(e.reason, 'expired')
})
