// Reads the small request bodies of the endpoints tokengate answers itself (the OAuth token
// endpoint, self-service tokens), with a cap: a declared or counted size over the limit is refused
// (413) without reading further. Also the media-type check both need.
import type { IncomingMessage } from 'node:http'
import { PayloadTooLarge } from '../errors.js'

/** The body's bytes, at most `limit`; PayloadTooLarge past it (the connection is then closed). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit)
    return Promise.reject(new PayloadTooLarge('body_too_large'))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        req.pause()
        reject(new PayloadTooLarge('body_too_large'))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(Buffer.concat(chunks))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

/** Whether Content-Type is `media` (any case, parameters allowed; a charset other than UTF-8 is not). */
export function hasMediaType(req: IncomingMessage, media: string): boolean {
  const [type, ...params] = (req.headers['content-type'] ?? '').split(';').map((p) => p.trim().toLowerCase())
  if (type !== media) return false
  const charset = params
    .find((p) => p.startsWith('charset='))
    ?.slice(8)
    .replace(/"/g, '')
  return charset === undefined || charset === 'utf-8'
}
