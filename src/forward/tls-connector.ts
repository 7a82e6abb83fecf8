// Forward stage, how a TLS upstream's refusal reaches the 502 reason. Under TLS 1.3 the client's
// handshake is over before the upstream checks the client certificate, so a missing or refused
// one shows only once the request is sent: either as an alert (OpenSSL servers: nginx, Apache,
// Orthanc's civetweb), whose error undici overwrites with "other side closed" when the socket ends
// just after, or as a bare close (servers that check in code, Node's). This connector keeps the
// alert, and names the close; classify() (forwarder.ts) maps both to `tls`.
import type { TLSSocket } from 'node:tls'
import { buildConnector } from 'undici'
import { isTlsFailure, TLS_CLOSED_UNANSWERED } from './forwarder.js'

/** undici's connector with these options, watching each TLS socket it opens (see above). */
export function tlsConnector(options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector(options)
  return (opts, callback) =>
    connect(opts, (...args) => {
      const socket = args[1] as TLSSocket | null
      if (socket?.encrypted) watch(socket)
      callback(...args)
    })
}

// Registered before undici's own listeners (added once the connector answers): these run first.
function watch(socket: TLSSocket): void {
  socket.on('error', (err: NodeJS.ErrnoException) => {
    // Destroyed now, the socket ends without the "other side closed" that would replace the alert.
    if (isTlsFailure(err.code)) socket.destroy()
  })
  socket.on('end', () => {
    // A request went out on this connection and not one byte ever came back: under TLS 1.3, how an
    // upstream that sends no alert refuses a client certificate (a stale kept-alive socket has
    // answered before, so it is not taken for this).
    if (socket.bytesRead > 0 || socket.bytesWritten === 0) return
    const err: NodeJS.ErrnoException = new Error(
      'the upstream closed the new TLS connection without answering (under TLS 1.3, how a missing or refused client certificate shows when no alert is sent)',
    )
    err.code = TLS_CLOSED_UNANSWERED
    socket.destroy(err)
  })
}
