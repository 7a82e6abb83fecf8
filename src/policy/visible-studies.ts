// Policy, `scoping: studies` (DESIGN §3–4): which studies a decision lets the caller see, read from
// the cached study sets — an album token its album; a user token the album it names, its inbox, or
// with neither the union of its albums and inbox — and which set a STOW through it adds to.
// The only I/O is the store's cached set reads (as decide's membership check).
import { OutOfScope } from '../errors.js'
import type { TokenStore } from '../token/store.js'
import type { StudySetRef } from '../token/study-sets.js'
import type { Scope } from './decide.js'

/** The studies a caller may see: one or more study sets, never copied into one. */
export class VisibleStudies {
  constructor(private readonly sets: readonly ReadonlySet<string>[]) {}

  has(uid: string): boolean {
    for (const set of this.sets) if (set.has(uid)) return true
    return false
  }

  /** Every visible UID once, in the sets' order. */
  all(): string[] {
    const [first, ...rest] = this.sets
    if (!first) return []
    if (rest.length === 0) return [...first]
    return [...new Set(this.sets.flatMap((s) => [...s]))]
  }

  /** The UIDs of `wanted` that are visible, in `wanted`'s order. */
  pick(wanted: readonly string[]): string[] {
    return wanted.filter((uid) => this.has(uid))
  }
}

type SetReader = Pick<TokenStore, 'albumStudies' | 'inboxStudies' | 'userAlbums'>

/** Load what `scope` may see. Throws StoreUnavailable. */
export async function visibleStudies(scope: Scope, store: SetReader): Promise<VisibleStudies> {
  switch (scope.kind) {
    case 'album':
    case 'user-album':
      return new VisibleStudies([await store.albumStudies(scope.album)])
    case 'inbox':
      return new VisibleStudies([await store.inboxStudies(scope.user)])
    case 'user': {
      const albums = await store.userAlbums(scope.user)
      const sets = await Promise.all([
        store.inboxStudies(scope.user),
        ...albums.map((album) => store.albumStudies(album)),
      ])
      return new VisibleStudies(sets)
    }
    case 'api':
      // Resource mounts are not study-scoped (rewrite/plan.ts); should one ever ask: nothing.
      return new VisibleStudies([])
  }
}

/** Where a STOW-RS through this scope adds what it stored: the album it is for, else the inbox. */
export function storeTarget(scope: Scope): StudySetRef {
  if (scope.kind === 'api') throw new OutOfScope('study_not_in_scope')
  return scope.kind === 'album' || scope.kind === 'user-album'
    ? { kind: 'album', album: scope.album }
    : { kind: 'inbox', user: scope.user }
}
