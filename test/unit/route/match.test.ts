// Route match: mount choice, action rules, WADO-URI target, /link/<t>/ offsets, unsafe paths,
// zip download detection and the raw query. Pure: compiled routes in, RouteMatch or a GateError out.
import t from 'tap'
import { configSchema } from '../../../src/config/schema.js'
import { AmbiguousRequest, BadRequest, MalformedCredential, RouteNotFound } from '../../../src/errors.js'
import { compileRoutes } from '../../../src/route/compile.js'
import { matchRoute } from '../../../src/route/match.js'

const routes = compileRoutes(
  configSchema.parse({
    mounts: [
      { path: '/api', upstream: 'http://pacs:8042/dicom-web', wado: 'http://pacs:8042/wado' },
      { path: '/api/v2', upstream: 'http://pacs2:8042/dicom-web' },
      { path: '/plain', upstream: 'http://pacs3:8042/dicom-web' },
    ],
  }),
)

t.test(
  'mounts: the longest matching prefix wins and a prefix only matches at a segment boundary',
  async (t) => {
    const cases: [string, string, string | null][] = [
      ['/api/studies', '/api', 'http://pacs:8042/dicom-web'],
      ['/api/v2/studies', '/api/v2', 'http://pacs2:8042/dicom-web'],
      ['/api/v2x/studies', '/api', null], // /api/v2x is under /api, where no rule matches /v2x/studies
      ['/plain/studies', '/plain', 'http://pacs3:8042/dicom-web'],
    ]
    for (const [url, prefix, target] of cases) {
      if (target === null) {
        t.throws(
          () => matchRoute(routes, 'GET', url),
          { name: 'RouteNotFound', reason: 'no_rule', mountIndex: 2 },
          `${url}: no rule, counted under /api`,
        )
        continue
      }
      const m = matchRoute(routes, 'GET', url)
      t.equal(m.mount.prefix, prefix, `${url}: mount ${prefix}`)
      t.equal(m.target.href, target, `${url}: target`)
      t.equal(m.upstreamPath, '/studies', `${url}: upstream path`)
    }
  },
)

t.test('mounts are tried longest first whatever their order in the config', async (t) => {
  const reversed = compileRoutes(
    configSchema.parse({
      mounts: [
        { path: '/api', upstream: 'http://a/' },
        { path: '/api/v2', upstream: 'http://b/' },
      ],
    }),
  )
  t.equal(matchRoute(reversed, 'GET', '/api/v2/studies').mount.prefix, '/api/v2')
  t.equal(matchRoute(reversed, 'GET', '/api/studies').mount.prefix, '/api')
})

t.test('a path that only shares characters with a mount (/apix) is no_mount, not that mount', async (t) => {
  for (const url of [
    '/apix/studies',
    '/apix',
    '/',
    '/other/studies',
    '/API/studies',
    'http://evil/api/studies',
  ]) {
    t.throws(() => matchRoute(routes, 'GET', url), new RouteNotFound('no_mount'), url)
  }
})

t.test('a root mount catches every path no longer mount claims', async (t) => {
  const rooted = compileRoutes(
    configSchema.parse({
      mounts: [
        { path: '/', upstream: 'http://root/dicom-web' },
        { path: '/api', upstream: 'http://api/dicom-web' },
      ],
    }),
  )
  const root = matchRoute(rooted, 'GET', '/studies/1.2')
  t.equal(root.mount.prefix, '')
  t.equal(root.target.host, 'root')
  t.equal(root.upstreamPath, '/studies/1.2')
  t.equal(matchRoute(rooted, 'GET', '/api/studies').target.host, 'api')
})

t.test('the default DICOMweb rules give each method and path its action', async (t) => {
  const cases: [string, string, string][] = [
    ['GET', '/api/studies', 'read'],
    ['HEAD', '/api/studies', 'read'],
    ['GET', '/api/studies/1.2.3/series/4.5/instances/6.7/frames/1', 'read'],
    ['GET', '/api/series', 'read'],
    ['GET', '/api/instances', 'read'],
    ['POST', '/api/studies', 'write'],
    ['POST', '/api/studies/1.2.3', 'write'],
    ['PUT', '/api/studies/1.2.3', 'appropriate'],
    ['PUT', '/api/studies/1.2.3/series/4.5', 'appropriate'],
    ['DELETE', '/api/studies/1.2.3', 'write'],
    ['GET', '/api/studies/', 'read'],
    ['GET', '/api/wado', 'read'],
  ]
  for (const [method, url, action] of cases) {
    t.equal(matchRoute(routes, method, url).action, action, `${method} ${url} needs ${action}`)
  }
})

t.test('a method or path no rule covers is RouteNotFound no_rule, before any credential work', async (t) => {
  const cases: [string, string][] = [
    ['GET', '/api/tools/reset'],
    ['GET', '/api'],
    ['GET', '/api/'],
    ['PUT', '/api/studies'],
    ['PUT', '/api/studies/1.2.3/series/4.5/instances/6'],
    ['PATCH', '/api/studies/1.2.3'],
    ['DELETE', '/api/series/1.2.3'],
    ['POST', '/api/wado'],
    ['GET', '/api/studiesx'],
  ]
  for (const [method, url] of cases) {
    t.throws(
      () => matchRoute(routes, method, url),
      { name: 'RouteNotFound', reason: 'no_rule' },
      `${method} ${url}`,
    )
  }
})

t.test('configured rules replace the defaults and the first matching rule wins', async (t) => {
  const custom = compileRoutes(
    configSchema.parse({
      mounts: [
        {
          path: '/x',
          upstream: 'http://up/',
          rules: [
            { methods: ['GET'], path: '/admin/**', action: 'write' },
            { methods: '*', path: '/**', action: 'read' },
          ],
        },
      ],
    }),
  )
  t.equal(matchRoute(custom, 'GET', '/x/admin/a/b').action, 'write')
  t.equal(matchRoute(custom, 'POST', '/x/admin/a').action, 'read')
  t.equal(matchRoute(custom, 'OPTIONS', '/x/anything').action, 'read')
  t.equal(matchRoute(custom, 'GET', '/x').action, 'read', 'the mount root is "/" and `/**` covers it')
})

t.test('WADO-URI goes to the mount wado target with the /wado segment dropped', async (t) => {
  const m = matchRoute(routes, 'GET', '/api/wado?requestType=WADO&studyUID=1.2&contentType=image%2Fjpeg')
  t.equal(m.wado, true)
  t.equal(m.target.href, 'http://pacs:8042/wado')
  t.equal(m.upstreamPath, '')
  t.equal(m.subPath, '/wado')
  t.equal(
    m.query,
    'requestType=WADO&studyUID=1.2&contentType=image/jpeg',
    're-encoded with the fewest escapes',
  )

  const noWado = matchRoute(routes, 'GET', '/plain/wado?requestType=WADO')
  t.equal(noWado.wado, true, 'still WADO-URI without a wado target')
  t.equal(noWado.target.href, 'http://pacs3:8042/dicom-web', 'but it goes to the upstream')
  t.equal(noWado.upstreamPath, '/wado', 'keeping its /wado segment')

  t.equal(matchRoute(routes, 'GET', '/api/studies').wado, false)
})

t.test('a /link/<t>/ prefix is found by offsets into the raw URL and removed from the path', async (t) => {
  const secret = 'tg_AbCdEfGhIjKlMnOpQrStUvWxYz012345abcdef'
  const url = `/api/link/${secret}/studies/1.2?limit=5`
  const m = matchRoute(routes, 'GET', url)
  t.ok(m.linkSecretAt)
  const [start, end] = m.linkSecretAt as [number, number]
  t.equal(url.slice(start, end), secret)
  t.equal(m.subPath, '/studies/1.2')
  t.equal(m.upstreamPath, '/studies/1.2')
  t.equal(m.query, 'limit=5')
  t.equal(m.action, 'read')

  const nested = `/api/v2/link/${secret}/studies`
  const n = matchRoute(routes, 'GET', nested)
  t.equal(nested.slice(...(n.linkSecretAt as [number, number])), secret, 'offsets count the nested prefix')

  const wadoUrl = `/api/link/${secret}/wado?requestType=WADO`
  const w = matchRoute(routes, 'GET', wadoUrl)
  t.equal(wadoUrl.slice(...(w.linkSecretAt as [number, number])), secret)
  t.equal(w.upstreamPath, '', 'a link to WADO-URI still goes to the wado target')

  t.notOk('linkSecretAt' in matchRoute(routes, 'GET', '/api/studies'), 'no offsets without a link')
})

t.test('an empty link segment is MalformedCredential bad_link', async (t) => {
  t.throws(() => matchRoute(routes, 'GET', '/api/link//studies'), new MalformedCredential('bad_link'))
  try {
    matchRoute(routes, 'GET', '/api/link//studies')
    t.fail('should throw')
  } catch (err) {
    t.type(err, MalformedCredential)
    t.equal((err as MalformedCredential).reason, 'bad_link')
  }
})

t.test('dot segments, encoded separators and backslashes are BadRequest bad_path', async (t) => {
  const urls = [
    '/api/studies/../../tools',
    '/api/studies/..',
    '/api/studies/./1.2',
    '/api/studies/%2e%2e/tools',
    '/api/studies/%2E%2E/tools',
    '/api/studies/.%2e/tools',
    '/api/studies/%2e/1.2',
    '/api/studies/1.2%2F..%2F..%2Ftools',
    '/api/studies/1.2%2f3',
    '/api/studies/1.2%5c3',
    '/api/studies/1.2\\..\\tools',
    '/api/link/tg_secret/studies/../../tools',
  ]
  for (const url of urls) {
    try {
      matchRoute(routes, 'GET', url)
      t.fail(`${url} should be refused`)
    } catch (err) {
      t.type(err, BadRequest, url)
      t.equal((err as BadRequest).reason, 'bad_path', `${url}: bad_path`)
    }
  }
})

t.test('dots inside a segment (UIDs, file names) are ordinary characters', async (t) => {
  for (const url of [
    '/api/studies/1.2.840.10008',
    '/api/studies/a..b',
    '/api/studies/.x',
    '/api/studies/1.2.',
  ]) {
    t.equal(matchRoute(routes, 'GET', url).upstreamPath, url.slice('/api'.length), url)
  }
})

t.test('a zip download is detected from the Accept header or the accept query parameter', async (t) => {
  const cases: [string, string | undefined, boolean][] = [
    ['/api/studies/1.2', 'application/zip', true],
    ['/api/studies/1.2', 'Application/ZIP', true],
    ['/api/studies/1.2', 'multipart/related; type="application/dicom", application/zip;q=0.5', true],
    ['/api/studies/1.2', 'multipart/related; type="application/dicom"', false],
    ['/api/studies/1.2', undefined, false],
    ['/api/studies/1.2?accept=application/zip', undefined, true],
    ['/api/studies/1.2?accept=application%2Fzip', undefined, true],
    ['/api/studies/1.2?accept=application%2fzip', undefined, true],
    ['/api/studies/1.2?limit=1&accept=APPLICATION/ZIP', undefined, true],
    ['/api/studies/1.2?accept=application/json&accept=application/x-zip-compressed', undefined, true],
    ['/api/studies/1.2', 'application/gzip', false],
    ['/api/studies/1.2?accept=multipart%2Frelated%3Btype%3Dapplication%2Fdicom', undefined, false],
    ['/api/studies/1.2?xaccept=application/zip', undefined, false],
    ['/api/studies/1.2?filename=application/zip', undefined, false],
  ]
  for (const [url, accept, zip] of cases) {
    t.equal(matchRoute(routes, 'GET', url, accept).download, zip, `${url} Accept: ${accept}: ${zip}`)
  }
})

t.test('the query string is re-serialised canonically, without the ?', async (t) => {
  const queries: [string, string][] = [
    ['StudyDate=2020%2D01%2D01&includefield=all&limit=10', 'StudyDate=2020-01-01&includefield=all&limit=10'],
    ['PatientName=Doe%5EJohn&x=a+b&y=%7Ba%7D&&z', 'PatientName=Doe%5EJohn&x=a+b&y=%7Ba%7D&z'],
    ['album=a&album=b&inbox', 'album=a&album=b&inbox'],
    ['q=a?b', 'q=a?b'],
    ['[x]=1&y={2}', '%5Bx%5D=1&y=%7B2%7D'],
    ['', ''],
  ]
  for (const [q, want] of queries) {
    const m = matchRoute(routes, 'GET', q === '' ? '/api/studies' : `/api/studies?${q}`)
    t.equal(m.query, want, `query ${JSON.stringify(q)}`)
  }
  t.equal(matchRoute(routes, 'GET', '/api/studies?').query, '', 'a bare ? gives an empty query')
  t.equal(
    matchRoute(routes, 'GET', '/api/studies?a=%2e%2e/x').upstreamPath,
    '/studies',
    'dot segments in the query are not path segments',
  )
})

t.test('a path is matched and forwarded in its canonical spelling', async (t) => {
  const cases: [string, string, string][] = [
    ['GET', '/api/%73tudies/1.2.3', '/studies/1.2.3'],
    ['GET', '/api/studies/1%2E2%2e3/metadata', '/studies/1.2.3/metadata'],
    ['GET', '/api/studies/a%20b', '/studies/a%20b'],
    ['GET', '/api/studies/a+b%2B', '/studies/a+b+'],
    ['GET', '/api/studies/%7Bx%7D', '/studies/%7Bx%7D'],
    ['GET', '/api/studies/{x}', '/studies/%7Bx%7D'],
    ['GET', '/api/studies/1.2/', '/studies/1.2/'],
    ['POST', '/api/%73tudies', '/studies'],
  ]
  for (const [method, url, path] of cases) {
    const m = matchRoute(routes, method, url)
    t.equal(m.upstreamPath, path, `${url}: upstream path`)
    t.equal(m.subPath, path, `${url}: rules see it too`)
  }
  t.equal(
    matchRoute(routes, 'DELETE', '/api/%73tudies/1.2').action,
    'write',
    'an escaped name needs its action',
  )
})

t.test(
  'targets two parsers could read differently are AmbiguousRequest, with the rule as reason',
  async (t) => {
    const cases: [string, string][] = [
      ['/api/studies/..;/x', 'path_parameter'],
      ['/api/studies/.;/x', 'path_parameter'],
      ['/api/studies/..%3b/x', 'path_parameter'],
      ['/api/studies/%2e%2e%3b/x', 'path_parameter'],
      ['/api/studies;jsessionid=1/1.2', 'path_parameter'],
      ['/api/studies/..%00/x', 'control_char'],
      ['/api/studies/1.2%0a', 'control_char'],
      ['/api/studies/%252e%252e/x', 'double_encoding'],
      ['/api/studies/%252f', 'double_encoding'],
      ['/api/studies/...', 'dot_segment'],
      ['/api/studies/..%20/x', 'dot_segment'],
      ['/api/studies/%EF%BC%8E%EF%BC%8E/x', 'dot_segment'],
      ['/api/studies/%zz', 'bad_escape'],
      ['/api/studies/%C3', 'bad_escape'],
      ['/api/studies/caf\u00e9', 'non_ascii'],
      ['/api//studies', 'empty_segment'],
      ['/api/studies//1.2', 'empty_segment'],
      ['/api/studies#x', 'fragment'],
      ['/api/studies?x=1#y', 'fragment'],
      ['/api/studies?x=1;album=B', 'query_separator'],
      ['/api/studies?x%26album=B', 'query_separator'],
      ['/api/studies?album%00=B', 'control_char'],
      ['/api/studies?x=%01', 'control_char'],
      ['/api/studies?%2561lbum=B', 'double_encoding'],
      ['/api/studies?accept=application%252Fzip', 'double_encoding'],
      ['/api/studies?album[]=B', 'reserved_spelling'],
      ['/api/studies?album%5B%5D=B', 'reserved_spelling'],
      ['/api/studies?[album]=B', 'reserved_spelling'],
      ['/api/studies?album.x=B', 'reserved_spelling'],
      ['/api/studies?ALBUM=B', 'reserved_spelling'],
      ['/api/studies?%61lbum=B', 'reserved_spelling'],
      ['/api/studies?album+=B', 'reserved_spelling'],
      ['/api/studies?%20inbox=true', 'reserved_spelling'],
      ['/api/studies?%C5%BFtudyUID=1', 'reserved_spelling'],
      ['/api/studies?%C4%B1nbox=true', 'reserved_spelling'],
      ['/api/studies?%EF%BD%81lbum=B', 'reserved_spelling'],
      ['/api/studies?ACCEPT=application/zip', 'reserved_spelling'],
      ['/api/studies?0020,000D=1.2', 'reserved_spelling'],
      ['/api/studies?0020-000D=1.2', 'reserved_spelling'],
      ['/api/studies?(0020,000D)=1.2', 'reserved_spelling'],
      ['/api/studies?0x0020000D=1.2', 'reserved_spelling'],
      ['/api/studies?0020000d=1.2', 'reserved_spelling'],
      ['/api/studies?studyinstanceuid=1.2', 'reserved_spelling'],
      ['/api/wado?requestType=WADO&StudyUID=1.2', 'reserved_spelling'],
      ['/api/wado?requestType=WADO&studyUID=1&studyUID=2', 'repeated_param'],
      ['/api/studies?x=caf\u00e9', 'non_ascii'],
      ['/api/studies?x=%zz', 'bad_escape'],
    ]
    for (const [url, reason] of cases) {
      try {
        matchRoute(routes, 'GET', url)
        t.fail(`${url} should be refused`)
      } catch (err) {
        t.type(err, AmbiguousRequest, url)
        t.equal((err as AmbiguousRequest).reason, reason, `${url}: ${reason}`)
      }
    }
  },
)

t.test('reserved names in their exact spelling, and names that only look alike, pass', async (t) => {
  const ok = [
    'album=A&inbox=false&accept=application/json',
    'StudyInstanceUID=1.2&0020000D=1.3',
    'studyUID=1&seriesUID=2&objectUID=3',
    'albums=x&myalbum=y&album_id=z&inboxes=1&accepted=1',
    'PatientName=a%26b%3Dc%3Bd',
    'x=%252e',
    '00100010=Doe&00200010=1',
  ]
  for (const q of ok) t.doesNotThrow(() => matchRoute(routes, 'GET', `/api/studies?${q}`), q)
})
