// Writes an error answer: JSON `{"error","reason"}` with the catalog's status and headers. The only
// place (with the forwarder in forward/) that writes a response.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { HttpError } from '../errors.js'

export function writeError(
  req: IncomingMessage,
  res: ServerResponse,
  err: HttpError,
  extraHeaders: Readonly<Record<string, string>>,
): void {
  const body = JSON.stringify(err.body)
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...err.headers,
    ...extraHeaders,
  }
  // A refused upload we never read: close rather than drain gigabytes to keep the connection.
  const hasBody =
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
  if (hasBody && !req.readableEnded) headers.connection = 'close'
  res.writeHead(err.status, headers)
  res.end(req.method === 'HEAD' ? undefined : body)
}
