// Server, around the forward stage: a request body slower than `listen.minUploadRate` is cut. A
// client trickling a byte every few seconds into a `Content-Length: 1000000000` upload would hold
// an upstream socket for ever (300 of them once took all 256 and every other client timed out);
// cutting the connection makes the forwarder abort the upstream request (client gone).
import type { IncomingMessage, ServerResponse } from 'node:http'

export interface UploadRate {
  /** Bytes per second; 0 = off. */
  minBytesPerSecond: number
  /** Milliseconds per measurement. */
  windowMs: number
}

import { requestHasBody as hasBody } from '../forward/upstream-headers.js'

/** Whether a request carries a body (Transfer-Encoding, a non-zero Content-Length; on HTTP/2 an open stream). */
export { hasBody }

/**
 * Watch the body of `req` as it is forwarded; call `onCut` and destroy the connection when a
 * window passes with fewer than `minBytesPerSecond × window` bytes from the client. A window in
 * which tokengate itself left bytes unread (the upstream is the slow side) does not count.
 * Returns whether a watch was started (only for requests with a body, when the rate is on).
 */
export function watchUploadRate(
  req: IncomingMessage,
  res: ServerResponse,
  rate: UploadRate,
  onCut: () => void,
): boolean {
  if (rate.minBytesPerSecond <= 0 || rate.windowMs <= 0 || req.readableEnded || !hasBody(req)) return false
  const socket = req.socket
  const needed = (rate.minBytesPerSecond * rate.windowMs) / 1000
  let mark = socket.bytesRead
  const timer = setInterval(() => {
    if (req.readableEnded) return stop()
    const read = socket.bytesRead
    // Bytes waiting in our buffer: we are not reading (backpressure from the upstream).
    const waiting = req.readableLength > 0 || req.isPaused()
    if (!waiting && read - mark < needed) {
      stop()
      onCut()
      socket.destroy()
      return
    }
    mark = read
  }, rate.windowMs)
  timer.unref()
  function stop() {
    clearInterval(timer)
    req.removeListener('end', stop)
    res.removeListener('close', stop)
  }
  req.once('end', stop)
  res.once('close', stop)
  return true
}
