// A token record for unit tests that need one without Redis (the cache, the policy): valid,
// enabled, unrevoked, read-only album token, with any field overridden.
import type { TokenRecord } from '../../src/token/record.js'

export function tokenRecord(over: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: 'tok_1',
    kind: 'album',
    user: 'u1',
    album: 'A',
    perms: new Set(['read']),
    expiresAt: 2_000_000_000_000,
    createdAt: 1,
    enabled: true,
    revokedAt: 0,
    description: '',
    tenant: '',
    attrs: '',
    lastUsedAt: 0,
    ...over,
  }
}
