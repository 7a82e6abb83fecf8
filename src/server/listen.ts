// Binding a listener: resolve with the bound address (port 0 picks a free one), reject with the
// bind error (EADDRINUSE…) instead of an unhandled 'error' event. Every listener uses it.
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.removeListener('error', reject)
      resolve(server.address() as AddressInfo)
    })
  })
}
