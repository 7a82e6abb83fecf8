// The upstreams /readyz probes: each mount's upstream, and its WADO-URI upstream when it is on
// another host. Shared by a single-process app and the primary of a multi-process one.
import type { CompiledRoutes } from '../route/compile.js'

export function upstreamsOf(routes: CompiledRoutes): Map<string, URL> {
  const out = new Map<string, URL>()
  for (const m of routes.mounts) {
    out.set(`mount ${m.prefix || '/'}`, m.upstream)
    if (m.wado && m.wado.host !== m.upstream.host) out.set(`mount ${m.prefix || '/'} wado`, m.wado)
  }
  return out
}
