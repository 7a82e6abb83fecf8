// Revocation delay across replicas: for each token, warm it in every replica's cache, revoke it
// with TokenAdmin (as the CLI does), then poll every replica back to back until it refuses the
// token. The delay is from revoke() returning to the refused answer arriving.
import { Client } from 'undici'

/**
 * @param {object} o
 * @param {string[]} o.replicas       base URLs
 * @param {{ id: string, token: string }[]} o.tokens
 * @param {(id: string) => Promise<unknown>} o.revoke
 * @returns {Promise<{ delaysMs: number[], servedAfterRevoke: number }>}
 */
export async function measureRevocations(o) {
  const clients = o.replicas.map((url) => new Client(url, { pipelining: 1 }))
  /** @param {Client} client @param {string} token */
  const status = async (client, token) => {
    const res = await client.request({
      path: '/api/studies',
      method: 'GET',
      headers: { authorization: `Bearer ${token}` },
    })
    await res.body.dump()
    return res.statusCode
  }
  /** @type {number[]} */
  const delaysMs = []
  let servedAfterRevoke = 0
  try {
    for (const { id, token } of o.tokens) {
      for (const client of clients) {
        const warm = await status(client, token)
        if (warm !== 200) throw new Error(`token not accepted before revocation (${warm})`)
      }
      await o.revoke(id)
      const revoked = performance.now()
      await Promise.all(
        clients.map(async (client) => {
          for (let polls = 0; ; polls++) {
            const s = await status(client, token)
            if (s === 401) return void delaysMs.push(performance.now() - revoked)
            servedAfterRevoke++
            if (polls > 10_000) throw new Error('a replica never refused the revoked token')
          }
        }),
      )
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()))
  }
  return { delaysMs, servedAfterRevoke }
}
