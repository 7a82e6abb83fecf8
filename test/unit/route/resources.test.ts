// Resource rules (issue 13): `mounts[].resources` read by the schema (bad paths refused with what to
// change), compiled once, and matched by the ordinary route matcher, which then binds the resource
// type, the `{id}` (percent-decoded), the action and the `{attr.NAME}` values of the rule it matched.
import t from 'tap'
import { parseResourcePath } from '../../../src/config/resource-path.js'
import { configSchema } from '../../../src/config/schema.js'
import { BadRequest, RouteNotFound } from '../../../src/errors.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { matchRoute } from '../../../src/route/match.js'
import { iotMount, THINGER_RESOURCES } from '../../helpers/resources.js'

const IOT = {
  ...iotMount('http://127.0.0.1:9000/v1'),
  resources: {
    ...THINGER_RESOURCES,
    site: [{ methods: '*', path: '/sites/{attr.tenant}/{attr.site}/*/{id}', action: 'Any' }],
  },
}
const routes = compileRoutes(
  configSchema.parse({ mounts: [{ path: '/api', upstream: 'http://pacs/dicom-web' }, IOT] }),
)

t.test('each request binds the type, id, action and attributes of the first rule it matches', async (t) => {
  const cases: [string, string, object][] = [
    [
      'GET',
      '/iot/devices/device42/resources/led/state',
      { type: 'device', id: 'device42', action: 'AccessDeviceResources', attrs: [] },
    ],
    [
      'GET',
      '/iot/devices/device42/resources',
      { type: 'device', id: 'device42', action: 'AccessDeviceResources' },
    ],
    ['GET', '/iot/devices/device42/stats', { type: 'device', id: 'device42', action: 'GetDeviceStats' }],
    ['GET', '/iot/devices/device42/stats/', { type: 'device', id: 'device42', action: 'GetDeviceStats' }],
    ['GET', '/iot/devices', { type: 'device', id: '*', action: 'ListDevices' }],
    ['DELETE', '/iot/devices/d7', { type: 'device', id: 'd7', action: 'DeleteDevice' }],
    ['GET', '/iot/buckets/b1/data?items=3', { type: 'bucket', id: 'b1', action: 'ReadBucket' }],
    ['POST', '/iot/buckets/b1/data', { type: 'bucket', id: 'b1', action: 'WriteBucket' }],
    [
      'GET',
      '/iot/departments/cardiology/reports/2026',
      { type: 'department', id: '*', action: 'read', attrs: [['department', 'cardiology']] },
    ],
    [
      'PATCH',
      '/iot/sites/acme/lyon/gates/g1',
      {
        type: 'site',
        id: 'g1',
        action: 'Any',
        attrs: [
          ['tenant', 'acme'],
          ['site', 'lyon'],
        ],
      },
    ],
  ]
  for (const [method, url, want] of cases) {
    const m = matchRoute(routes, method, url)
    t.match(m.resource, want, `${method} ${url}`)
    t.equal(m.mount.prefix, '/iot')
  }
})

t.test('bound values are percent-decoded as the upstream reads them; a bad escape is 400', async (t) => {
  t.equal(matchRoute(routes, 'GET', '/iot/devices/device%34%32/stats').resource?.id, 'device42')
  t.equal(matchRoute(routes, 'GET', '/iot/devices/a%2Bb/stats').resource?.id, 'a+b')
  t.same(matchRoute(routes, 'GET', '/iot/departments/R%26D/x').resource?.attrs, [['department', 'R&D']])
  t.throws(() => matchRoute(routes, 'GET', '/iot/devices/%E0%A4%A/stats'), BadRequest)
  // Encoded separators never reach the binding: they are refused as for every mount.
  t.throws(() => matchRoute(routes, 'GET', '/iot/devices/a%2Fb/stats'), {
    name: 'BadRequest',
    reason: 'bad_path',
  })
})

t.test('a path or method no resource rule matches is 404 no_rule', async (t) => {
  for (const [method, url] of [
    ['GET', '/iot'],
    ['GET', '/iot/unknown'],
    ['GET', '/iot/devices/device42'],
    ['GET', '/iot/devices/device42/stats/more'],
    ['GET', '/iot/devices//stats'],
    ['PUT', '/iot/buckets/b1/data'],
    ['HEAD', '/iot/devices'],
    ['GET', '/iot/sites/acme/lyon/g1'],
  ]) {
    t.throws(() => matchRoute(routes, method as string, url as string), RouteNotFound, `${method} ${url}`)
  }
})

t.test('a DICOMweb mount beside a resource mount binds no resource', async (t) => {
  t.equal(matchRoute(routes, 'GET', '/api/studies').resource, undefined)
  t.equal(matchRoute(routes, 'GET', '/api/studies').action, 'read')
})

t.test('the permission a resource rule stands for is read only for GET/HEAD rules', async (t) => {
  t.equal(matchRoute(routes, 'GET', '/iot/devices').action, 'read')
  t.equal(matchRoute(routes, 'DELETE', '/iot/devices/d1').action, 'write')
  t.equal(matchRoute(routes, 'GET', '/iot/sites/a/b/c/d').action, 'write', 'methods: * is not read-only')
})

t.test('rules of the first type written win where two types match the same request', async (t) => {
  const overlapping = compileRoutes(
    configSchema.parse({
      mounts: [
        {
          path: '/x',
          upstream: 'http://u/',
          resources: {
            gadget: [{ methods: ['GET'], path: '/things/{id}', action: 'Read' }],
            thing: [{ methods: ['GET'], path: '/things/*', action: 'Read' }],
          },
        },
      ],
    }),
  )
  t.equal(matchRoute(overlapping, 'GET', '/x/things/t1').resource?.type, 'gadget')
})

t.test('resource paths are read by one parser; bad ones say what to change', async (t) => {
  t.same(parseResourcePath('/devices/{id}/resources/**'), [
    { kind: 'literal', text: 'devices' },
    { kind: 'id' },
    { kind: 'literal', text: 'resources' },
    { kind: 'rest' },
  ])
  t.same(parseResourcePath('/'), [])
  const bad: [string, RegExp][] = [
    ['devices', /starts with "\/"/],
    ['/devices//stats', /empty segment/],
    ['/devices/', /empty segment/],
    ['/devices/**/stats', /put it last/],
    ['/devices/{id}/x/{id}', /"\{id\}" appears twice/],
    ['/d/{attr.site}/{attr.site}', /appears twice/],
    ['/devices/dev-{id}', /each a whole segment/],
    ['/devices/{name}', /placeholders are \{id\}, \{attr.NAME\}/],
    ['/devices/{attr.}', /placeholders/],
    ['/devices/dev*', /each a whole segment/],
  ]
  for (const [path, message] of bad) {
    const problem = parseResourcePath(path)
    t.type(problem, 'string', path)
    t.match(problem, message, path)
  }
})

t.test('the config refuses bad resource rules with the key that is wrong', async (t) => {
  const parse = (mount: Record<string, unknown>) =>
    configSchema.safeParse({ mounts: [{ path: '/iot', upstream: 'http://u/', ...mount }] })
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    [
      'a bad path',
      { resources: { device: [{ methods: ['GET'], path: '/d/dev-{id}', action: 'A' }] } },
      'mounts.0.resources.device.0.path',
      /whole segment/,
    ],
    [
      'an action with a space',
      { resources: { device: [{ methods: ['GET'], path: '/d/{id}', action: 'Get Stats' }] } },
      'mounts.0.resources.device.0.action',
      /letters, digits/,
    ],
    [
      'a type named *',
      { resources: { '*': [{ methods: ['GET'], path: '/d/{id}', action: 'A' }] } },
      'mounts.0.resources.*',
      /letters, digits/,
    ],
    ['a type without rules', { resources: { device: [] } }, 'mounts.0.resources.device', /.+/],
    ['no type at all', { resources: {} }, 'mounts.0.resources', /at least one resource type/],
    [
      'rules and resources together',
      {
        rules: [{ methods: '*', path: '/**', action: 'read' }],
        resources: { device: [{ methods: ['GET'], path: '/d/{id}', action: 'A' }] },
      },
      'mounts.0.resources',
      /either rules or resources/,
    ],
    [
      'an unknown key in a rule',
      { resources: { device: [{ methods: ['GET'], path: '/d/{id}', action: 'A', perm: 'read' }] } },
      'mounts.0.resources.device.0',
      /perm/,
    ],
  ]
  for (const [what, mount, at, message] of cases) {
    const res = parse(mount)
    t.notOk(res.success, what)
    const issue = res.error?.issues.find((i) => i.path.join('.').startsWith(at))
    t.ok(issue, `${what}: reported at ${at} (got ${res.error?.issues.map((i) => i.path.join('.'))})`)
    t.match(issue?.message, message, what)
  }
})
