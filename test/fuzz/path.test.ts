// Property-based: path normalisation (route/canonical-path.ts) and route matching. For any raw
// path: matched or refused with a 4xx, never a throw of anything else; when matched, the path sent
// upstream is canonical (a fixed point, only pchar and escapes), and no segment of it reads as `.`
// or `..` to a server that decodes once or twice, drops `;` parameters, stops at NUL, or trims
// dots and spaces.
import fc from 'fast-check'
import t from 'tap'
import { configSchema } from '../../src/config/schema.js'
import { canonicalPath } from '../../src/route/canonical-path.js'
import { compileRoutes } from '../../src/route/compile.js'
import { matchRoute } from '../../src/route/match.js'
import { params, pathArb, queryArb, RUNS, refusedOr } from './arbitraries.js'

const routes = compileRoutes(
  configSchema.parse({
    mounts: [{ path: '/api', upstream: 'http://pacs/dicom-web', wado: 'http://pacs/wado' }],
  }),
)

/** The ways servers in the wild read one segment. */
function readings(seg: string): string[] {
  const out = [seg]
  let s = seg
  for (let i = 0; i < 2; i++) {
    try {
      s = decodeURIComponent(s)
    } catch {
      break
    }
    out.push(s)
  }
  return out.flatMap((r) => [
    r,
    r.split(';')[0] ?? '',
    r.split('\0')[0] ?? '',
    r.replace(/[. ]+$/, '.'),
    r.trim(),
  ])
}

const PCHAR_OR_ESCAPE = /^(?:[A-Za-z0-9\-._~!$&'()*+,=:@/]|%[0-9A-F]{2})*$/

t.test(
  `any path is canonical or refused, and nothing upstream reads as a dot segment (${RUNS} runs)`,
  async (t) => {
    fc.assert(
      fc.property(pathArb, (raw) => {
        const path = refusedOr(() => canonicalPath(raw))
        if (path === null) return
        if (!PCHAR_OR_ESCAPE.test(path)) throw new Error(`not canonical: ${JSON.stringify(path)}`)
        if (canonicalPath(path) !== path) throw new Error(`not a fixed point: ${path}`)
        const segs = path.split('/').slice(1)
        segs.forEach((seg, i) => {
          if (seg === '' && i !== segs.length - 1) throw new Error(`empty segment in ${path}`)
          for (const r of readings(seg)) {
            if (r === '.' || r === '..') throw new Error(`${JSON.stringify(seg)} reads as ${r} in ${path}`)
          }
        })
      }),
      params,
    )
    t.pass()
  },
)

t.test(`matchRoute answers a RouteMatch or a 4xx for any target (${RUNS} runs)`, async (t) => {
  const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH')
  const target = fc
    .tuple(fc.constantFrom('/api', '/api/link/tg_x', '/apix', ''), pathArb, fc.option(queryArb))
    .map(([mount, path, q]) => `${mount}${path}${q === null ? '' : `?${q}`}`)
  fc.assert(
    fc.property(method, target, fc.option(fc.string()), (m, url, accept) => {
      const route = refusedOr(() => matchRoute(routes, m, url, accept ?? undefined))
      if (!route) return
      if (route.upstreamPath.includes('?') || route.upstreamPath.includes('#')) throw new Error('path leak')
      if (route.query !== route.params.text) throw new Error('query is not the parsed text')
    }),
    params,
  )
  t.pass()
})
