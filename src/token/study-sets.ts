// Study sets, write side (scoping: studies, DESIGN §3–4): the StudyInstanceUIDs of an album
// (`<prefix>album:<id>:studies`) or of a user's inbox (`<prefix>user:<id>:inbox`). Used by the
// admin operations (admin/studies.ts) and by STOW-RS recording (forward/study-recorder.ts), so the
// batching and the invalidation message are written once. Single-key commands only (SADD / SREM /
// SSCAN / SCARD in batches), so it works unchanged on Redis Cluster.
import type { Cluster, Redis } from 'ioredis'
import { publishInvalidation } from './invalidation.js'
import type { EvictKey, Keys } from './keys.js'
import { storeError } from './redis-store.js'

/** Which study set: an album's, or a user's inbox. */
export type StudySetRef = { kind: 'album'; album: string } | { kind: 'inbox'; user: string }

/** A DICOM UID (PS3.5 §9.1): digits and dots, at most 64 characters. */
export const STUDY_UID = /^[0-9]+(?:\.[0-9]+)*$/
export const MAX_UID_LENGTH = 64

export function isStudyUid(value: string): boolean {
  return value.length <= MAX_UID_LENGTH && STUDY_UID.test(value)
}

/** UIDs per SADD/SREM: big imports go in several commands, none of them blocking Redis for long. */
const BATCH = 1000
/** How long the instances a STOW stored into a new study are remembered (parallel uploads). */
const STORED_TTL_MS = 3_600_000
const SCAN_COUNT = 1000

/** The invalidation that makes every replica forget a cached set (inbox changes go by user). */
export function evictKeyOf(ref: StudySetRef): EvictKey {
  return ref.kind === 'album' ? { kind: 'album', album: ref.album } : { kind: 'user', user: ref.user }
}

export class StudySets {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: Keys,
    /**
     * Given on the request path (STOW recording, PUT/DELETE /studies/{uid}): every Redis failure
     * is then told here (the Redis error metric) and thrown as StoreUnavailable, which answers 503
     * with Retry-After. Absent (admin commands): the Redis error is thrown as it is.
     */
    private readonly onCommandError?: () => void,
  ) {}

  /** Run Redis commands, mapping a failure to StoreUnavailable on the request path. */
  private async guard<T>(commands: () => Promise<T>): Promise<T> {
    if (!this.onCommandError) return commands()
    try {
      return await commands()
    } catch (err) {
      this.onCommandError()
      throw storeError(err)
    }
  }

  key(ref: StudySetRef): string {
    return ref.kind === 'album' ? this.keys.albumStudies(ref.album) : this.keys.userInbox(ref.user)
  }

  /** Add UIDs (callers check them); returns how many were new. Publishes an invalidation if any were. */
  async add(ref: StudySetRef, uids: Iterable<string>): Promise<number> {
    return this.guard(() => this.change(ref, uids, (key, batch) => this.redis.sadd(key, ...batch)))
  }

  /** Remove UIDs; returns how many were there. Publishes an invalidation if any were. */
  async remove(ref: StudySetRef, uids: Iterable<string>): Promise<number> {
    return this.guard(() => this.change(ref, uids, (key, batch) => this.redis.srem(key, ...batch)))
  }

  /** Every UID in the set, in Redis's order (SSCAN: never one huge reply). */
  async members(ref: StudySetRef): Promise<string[]> {
    const key = this.key(ref)
    return this.guard(async () => {
      const seen = new Set<string>()
      let cursor = '0'
      do {
        const [next, batch] = await this.redis.sscan(key, cursor, 'COUNT', SCAN_COUNT)
        for (const uid of batch) seen.add(uid)
        cursor = next
      } while (cursor !== '0')
      return [...seen]
    })
  }

  async count(ref: StudySetRef): Promise<number> {
    return this.guard(() => this.redis.scard(this.key(ref)))
  }

  /**
   * Remember that `sops` of `study` were stored through `ref` (for an hour) and return every
   * instance remembered so far: uploads of one new study in parallel requests add up. One key,
   * one MULTI: fine on Redis Cluster.
   */
  async track(ref: StudySetRef, study: string, sops: readonly string[]): Promise<ReadonlySet<string>> {
    const key = this.storedKey(ref, study)
    return this.guard(async () => {
      const replies = await this.redis
        .multi()
        .sadd(key, ...sops)
        .pexpire(key, STORED_TTL_MS)
        .smembers(key)
        .exec()
      const failed = replies?.find(([err]) => err)
      if (!replies || failed) throw failed?.[0] ?? new Error('MULTI aborted')
      return new Set(replies[2]?.[1] as string[])
    })
  }

  /**
   * Claim a study new to the archive for `ref` (for an hour, like the tracked instances): true
   * when `ref` holds the claim (now or already), false when another set took it first. One key:
   * two uploads of one new study through different sets cannot both get it.
   */
  async claim(ref: StudySetRef, study: string): Promise<boolean> {
    const key = this.keys.studyClaim(study)
    const owner = ref.kind === 'album' ? `album:${ref.album}` : `inbox:${ref.user}`
    return this.guard(async () => {
      if ((await this.redis.set(key, owner, 'PX', STORED_TTL_MS, 'NX')) === 'OK') return true
      return (await this.redis.get(key)) === owner
    })
  }

  /** The instances of `study` remembered as stored through `ref` (read only: tracking is track's). */
  async tracked(ref: StudySetRef, study: string): Promise<ReadonlySet<string>> {
    return this.guard(async () => new Set(await this.redis.smembers(this.storedKey(ref, study))))
  }

  private storedKey(ref: StudySetRef, study: string): string {
    return ref.kind === 'album'
      ? this.keys.albumStored(ref.album, study)
      : this.keys.inboxStored(ref.user, study)
  }

  private async change(
    ref: StudySetRef,
    uids: Iterable<string>,
    apply: (key: string, batch: string[]) => Promise<number>,
  ): Promise<number> {
    const key = this.key(ref)
    let changed = 0
    let batch: string[] = []
    try {
      for (const uid of uids) {
        batch.push(uid)
        if (batch.length === BATCH) {
          changed += await apply(key, batch)
          batch = []
        }
      }
      if (batch.length) changed += await apply(key, batch)
    } finally {
      // Even when a later batch failed: a removal that reached Redis must reach every replica.
      if (changed > 0) await publishInvalidation(this.redis, this.keys, evictKeyOf(ref))
    }
    return changed
  }
}
