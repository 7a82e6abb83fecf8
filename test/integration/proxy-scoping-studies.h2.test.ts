// The `scoping: studies` scope-integrity table (proxy-scoping-studies.test.ts), unchanged, over TLS +
// HTTP/2 (issue 17.5): helpers/h2.ts makes startGate serve HTTP/2 and `send` speak it.
process.env.TOKENGATE_TEST_H2 = '1'
await import('./proxy-scoping-studies.test.js')
