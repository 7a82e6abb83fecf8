// classify(): which upstream failures are `tls` (issue 17): handshake and certificate errors, a
// TLS 1.3 alert after the handshake (a refused client certificate), and a new TLS connection the
// upstream closed without answering (tls-connector.ts); a plain closed socket stays `econnreset`.
import t from 'tap'
import { classify, TLS_CLOSED_UNANSWERED } from '../../../src/forward/forwarder.js'

const failure = (code: string, message = code) => Object.assign(new Error(message), { code })

const cases: [string, string][] = [
  ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'tls'],
  ['ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'tls'],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'tls'],
  ['CERT_HAS_EXPIRED', 'tls'],
  [TLS_CLOSED_UNANSWERED, 'tls'],
  ['UND_ERR_SOCKET', 'econnreset'],
  ['ECONNRESET', 'econnreset'],
  ['ECONNREFUSED', 'econnrefused'],
]
for (const [code, reason] of cases)
  t.test(`${code} → ${reason}`, async (t) => {
    const mapped = classify(failure(code, 'why')) as Error & { reason: string }
    t.equal(mapped.reason, reason)
    if (reason === 'tls') t.equal(mapped.message, `${code}: why`, 'the code and reason are kept for the log')
  })
