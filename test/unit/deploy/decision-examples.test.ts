// The decision endpoint's example configurations for Traefik and Envoy (examples/). Neither tool is
// installed here, so each file is parsed as YAML and checked for the fields the README relies on:
// the endpoint path tokengate answers by default, the headers it returns (named as
// server/decision-endpoint.ts and the identityHeaders defaults name them), the original request
// passed the one way the endpoint believes, and the credential dropped before the upstream.
// (The nginx example is run for real by test/integration/nginx-auth-request.test.ts.)
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { configSchema } from '../../../src/config/schema.js'
import { TOKEN_ID_HEADER, UPSTREAM_URI_HEADER } from '../../../src/server/decision-endpoint.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const defaults = configSchema.parse({
  redis: { url: 'redis://x' },
  mounts: [{ path: '/api', upstream: 'http://x' }],
})
const PATH = defaults.decisionEndpoint.path
const HEADERS = [
  UPSTREAM_URI_HEADER,
  defaults.identityHeaders.user,
  defaults.identityHeaders.scope,
  defaults.identityHeaders.tokenId,
  TOKEN_ID_HEADER,
]
  .map((h) => h.toLowerCase())
  .filter((h, i, all) => all.indexOf(h) === i)

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML; the assertions check each field read
type Yaml = any

function load(file: string): Yaml {
  return parseYaml(readFileSync(`${ROOT}${file}`, 'utf8'))
}
const lower = (list: unknown): string[] => (list as string[]).map((h) => h.toLowerCase())

t.test('the Traefik example asks the endpoint by forwardAuth and passes its headers on', async (t) => {
  const http = load('examples/traefik/tokengate.yml').http
  const auth = http.middlewares.tokengate.forwardAuth
  t.equal(new URL(auth.address).pathname, PATH, 'the default endpoint path')
  t.equal(auth.trustForwardHeader, false, 'Traefik sets X-Forwarded-Uri itself, never the client')
  t.ok(lower(auth.authRequestHeaders).includes('authorization'), 'the credential reaches the decision')
  t.notOk(lower(auth.authRequestHeaders).includes('x-original-uri'), 'no second shape passed on')
  for (const h of HEADERS) t.ok(lower(auth.authResponseHeaders).includes(h), `${h} copied to the request`)
  const router = http.routers.pacs
  t.same(router.middlewares.slice(0, 2), ['tokengate', 'tokengate-strip-credential'], 'decide, then strip')
  t.equal(http.middlewares['tokengate-strip-credential'].headers.customRequestHeaders.Authorization, '')
  t.ok(http.services[router.service].loadBalancer.servers[0].url, 'a service behind it')
})

t.test('the Envoy example asks by ext_authz path prefix and sends the decided URI upstream', async (t) => {
  const hcm =
    load('examples/envoy/envoy.yaml').static_resources.listeners[0].filter_chains[0].filters[0].typed_config
  const filters: { name: string; typed_config: Yaml }[] = hcm.http_filters
  const at = (name: string) => filters.findIndex((f) => f.name === name)
  const authz = filters[at('envoy.filters.http.ext_authz')]?.typed_config
  t.ok(authz, 'an ext_authz filter')
  const service = authz?.http_service
  t.equal(service.path_prefix, PATH, 'the original path appended to the endpoint path')
  t.equal(authz?.failure_mode_allow, false, 'tokengate down: refused, never let through')
  const exact = (patterns: { exact: string }[]) => patterns.map((p) => p.exact)
  t.ok(exact(service.authorization_request.allowed_headers.patterns).includes('authorization'))
  const upstreamHeaders = exact(service.authorization_response.allowed_upstream_headers.patterns)
  for (const h of HEADERS) t.ok(upstreamHeaders.includes(h), `${h} allowed upstream`)
  t.ok(at('tokengate.strip') < at('envoy.filters.http.ext_authz'), 'client identity headers stripped first')
  t.ok(at('tokengate.apply') > at('envoy.filters.http.ext_authz'), 'the decision applied after')
  t.equal(filters.at(-1)?.name, 'envoy.filters.http.router', 'the router last')
  const apply: string = filters[at('tokengate.apply')]?.typed_config.default_source_code.inline_string
  t.match(apply, `h:get("${UPSTREAM_URI_HEADER}")`, 'reads the decided URI')
  t.match(apply, 'h:replace(":path", uri)', 'and sends it as the path')
  t.match(apply, 'h:remove("authorization")', 'without the credential')
  const strip: string = filters[at('tokengate.strip')]?.typed_config.default_source_code.inline_string
  for (const h of HEADERS.filter((h) => h !== TOKEN_ID_HEADER))
    t.match(strip, `h:remove("${h}")`, `strips ${h}`)
  t.equal(hcm.common_http_protocol_options.headers_with_underscores_action, 'REJECT_REQUEST')
  const clusters = load('examples/envoy/envoy.yaml').static_resources.clusters.map(
    (c: { name: string }) => c.name,
  )
  t.ok(clusters.includes(service.server_uri.cluster), 'the tokengate cluster is defined')
})

t.test('the nginx example names the endpoint and the headers as tokengate answers them', async (t) => {
  const text = readFileSync(`${ROOT}examples/nginx/tokengate.conf.template`, 'utf8')
  t.match(text, `proxy_pass http://tokengate_decide${PATH};`)
  for (const h of HEADERS)
    t.match(text, `$upstream_http_${h.replace(/-/g, '_')}`, `${h} read from the decision`)
  t.match(text, 'proxy_pass http://tokengate_pacs$tg_uri;', 'the decided URI, not the client’s')
})
