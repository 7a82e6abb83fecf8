// Token lookup, invalidation: every tokengate subscribes to the `<prefix>events` channel and evicts
// what a message names (a token hash, `user:<id>`, `album:<id>`; wire form in keys.ts). Admin
// operations publish through publishInvalidation. Messages sent while a replica was disconnected
// are lost, so each (re)subscription clears the cache: nothing stays cached unconfirmed.
import type { Cluster, Redis } from 'ioredis'
import { decodeEvict, type EvictKey, encodeEvict, type Keys } from './keys.js'

/** Pause before asking again when a SUBSCRIBE is refused on a live connection. */
const RETRY_MS = 500

export interface InvalidationHandlers {
  evict: (key: EvictKey) => void
  /** Called after each successful (re)subscription, before which messages may have been missed. */
  resubscribed: (first: boolean) => void
  /** Called when a live subscription's connection drops: from now on messages may be missed. */
  lost?: () => void
}

export interface Subscription {
  /** Resolves at the first successful subscription. */
  ready: Promise<void>
  /** True while subscribed: every invalidation sent now reaches us. A new cache takes it as its trust. */
  readonly live: boolean
  close(): Promise<void>
}

/**
 * Subscribe on a dedicated connection (opened with `subscriber: true`, so ioredis does not
 * resubscribe on its own: we do it here, to know when the channel is live again). On every
 * topology that connection is one Redis that emits `ready` after each reconnection: to the master
 * with Sentinel (PUBLISH also reaches a demoted master through replication), to any node with
 * Cluster (a classic PUBLISH is broadcast to every node).
 */
export function subscribeInvalidations(
  subscriber: Redis | Cluster,
  keys: Keys,
  on: InvalidationHandlers,
): Subscription {
  const channel = keys.events()
  let first = true
  let closed = false
  let live = false
  let retry: NodeJS.Timeout | undefined
  let markReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => {
    markReady = resolve
  })

  const onMessage = (ch: string, message: string) => {
    if (ch !== channel) return
    const key = decodeEvict(message)
    if (key) on.evict(key)
  }
  const subscribe = () => {
    if (closed) return
    clearTimeout(retry)
    subscriber.subscribe(channel).then(
      () => {
        live = true
        on.resubscribed(first)
        first = false
        markReady()
      },
      // The connection dropped again before the reply: the next 'ready' retries. Refused on a
      // live connection (an ACL without the channel, a busy server): retry on a timer, or the
      // channel would stay down until the next reconnection.
      () => {
        if (!closed && subscriber.status === 'ready') retry = setTimeout(subscribe, RETRY_MS).unref()
      },
    )
  }
  const onClose = () => {
    if (closed || !live) return
    live = false
    on.lost?.()
  }
  subscriber.on('message', onMessage)
  subscriber.on('ready', subscribe)
  subscriber.on('close', onClose)
  if (subscriber.status === 'ready') subscribe()

  return {
    ready,
    get live() {
      return live
    },
    async close() {
      closed = true
      live = false
      clearTimeout(retry)
      subscriber.removeListener('message', onMessage)
      subscriber.removeListener('ready', subscribe)
      subscriber.removeListener('close', onClose)
      subscriber.disconnect()
    },
  }
}

/**
 * Tell every replica to evict `key`. Resolves with the number of subscribers that received it (on
 * a cluster, those of the node that took the PUBLISH: the cluster bus carries it to the others).
 */
export function publishInvalidation(redis: Redis | Cluster, keys: Keys, key: EvictKey): Promise<number> {
  return redis.publish(keys.events(), encodeEvict(key))
}
