// A real viewer across origins: the OHIF viewer (npm @ohif/app's built app) served on its own
// origin, its DICOMweb data source pointing straight at tokengate (no proxy in between), in
// Debian's headless Chromium. tokengate (`scoping: studies`, `cors` for the viewer's origin) is in
// front of a real Orthanc holding an album's two studies and one study outside it. Through a link
// token as the data source root, and through a Bearer token the viewer sends, the study list shows
// exactly the album's studies and a study opens: the browser fetched its metadata and pixel data
// through tokengate, and tokengate's access log shows those requests succeeded.
// Skipped only when /usr/bin/chromium is absent (scripts/install-deps.sh installs it as root).
import { existsSync } from 'node:fs'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { makeKeys } from '../../src/token/keys.js'
import { StudySets } from '../../src/token/study-sets.js'
import { accessLog, admin, type GateHandle, startGate } from '../helpers/gate.js'
import { startOrthanc } from '../helpers/orthanc.js'
import { startRedis } from '../helpers/redis.js'
import { CHROMIUM, launchChromium, ohifDist, serveOhif } from '../helpers/viewer.js'

if (!existsSync(CHROMIUM)) {
  t.plan(
    0,
    `${CHROMIUM} is not installed (Debian package chromium; scripts/install-deps.sh installs it as root)`,
  )
  process.exit(0)
}
const dist = ohifDist()
if (!dist.present)
  throw new Error(`OHIF viewer ${dist.version} not found in ${dist.dir}: run scripts/install-deps.sh`)

/** The whole file stays well under a minute; each wait is bounded by this. */
const WAIT_MS = 20_000

const redis = await startRedis()
t.teardown(redis.stop)
const orthanc = await startOrthanc()
t.teardown(orthanc.stop)
const in1 = await orthanc.createStudy({
  patientName: 'CORS^IN1',
  patientId: 'CI1',
  studyDescription: 'CORS-IN-ONE',
})
const in2 = await orthanc.createStudy({
  patientName: 'CORS^IN2',
  patientId: 'CI2',
  studyDescription: 'CORS-IN-TWO',
})
const out = await orthanc.createStudy({
  patientName: 'CORS^OUT',
  patientId: 'CO1',
  studyDescription: 'CORS-OUT-ONE',
})
await new StudySets(redis.client, makeKeys('tg:')).add({ kind: 'album', album: 'viewer' }, [
  in1.studyInstanceUID,
  in2.studyInstanceUID,
])

// The viewer's data source root, switched between the link and the Bearer runs.
let dataSourceRoot = ''
const viewer = await serveOhif(() => ohifAppConfig(dataSourceRoot))
t.teardown(viewer.stop)
const gate: GateHandle = await startGate({
  redisUrl: redis.url,
  upstream: orthanc.dicomWebUrl,
  wado: orthanc.wadoUrl,
  mount: { wadoNormalizeQuery: true, cors: { origins: [viewer.url] } },
  config: { scoping: 'studies' },
})
t.teardown(gate.stop)
const tokens = admin(redis.client)
const link = await tokens.create({ kind: 'album', album: 'viewer', perms: 'read', expiresIn: '1h' })
const bearerToken = await tokens.create({ kind: 'album', album: 'viewer', perms: 'read', expiresIn: '1h' })

const browser = await launchChromium()
t.teardown(browser.close)

/** The OHIF app-config a deployment would write (README "Browser viewers"), for one data source root. */
function ohifAppConfig(root: string): string {
  const config = {
    routerBasename: '/',
    showStudyList: true,
    extensions: [],
    modes: [],
    customizationService: {},
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: false,
    investigationalUseDialog: { option: 'never' },
    defaultDataSourceName: 'tokengate',
    dataSources: [
      {
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'tokengate',
        configuration: {
          friendlyName: 'tokengate',
          name: 'tokengate',
          qidoRoot: root,
          wadoRoot: root,
          wadoUriRoot: `${root}/wado`,
          qidoSupportsIncludeField: false,
          imageRendering: 'wadors',
          thumbnailRendering: 'wadors',
          enableStudyLazyLoad: true,
          supportsFuzzyMatching: false,
          supportsWildcard: true,
          singlepart: 'bulkdata,video',
          bulkDataURI: { enabled: true },
          omitQuotationForMultipartRequest: true,
        },
      },
    ],
  }
  return `window.config = ${JSON.stringify(config, null, 2)};\n`
}

/** Access-log lines from `since` on (the index into accessLog(gate)). */
function seen(since: number): Record<string, unknown>[] {
  return accessLog(gate).slice(since)
}

async function waitFor(t: Test, what: string, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + WAIT_MS
  while (!check()) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for ${what}`)
      return false
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.pass(what)
  return true
}

async function shot(page: Page, name: string): Promise<void> {
  // Set TOKENGATE_SCREENSHOTS=dir to look at the pages by eye while changing this test.
  const dir = process.env.TOKENGATE_SCREENSHOTS
  if (dir) await page.screenshot({ path: `${dir}/${name}.png` })
}

/**
 * The study list shows the album's two studies and not the other one (OHIF writes PN as
 * "CORS, IN1"), from a study search tokengate answered with the `via` credential.
 */
async function checkStudyList(t: Test, page: Page, since: number, via: 'link' | 'bearer'): Promise<void> {
  const name = via
  await page.getByText('CORS, IN1').first().waitFor({ timeout: WAIT_MS })
  await page.getByText('CORS, IN2').first().waitFor({ timeout: WAIT_MS })
  await shot(page, `${name}-list`)
  const text = (await page.locator('body').textContent()) ?? ''
  t.match(text, 'CORS, IN1', 'the list shows the first album study')
  t.match(text, 'CORS, IN2', 'the list shows the second album study')
  t.notMatch(text, 'CORS, OUT', 'the list does not show the study outside the album')
  t.match(text, /1-2 of 2/, 'and counts two studies')
  t.ok(
    seen(since).some((l) => l.via === via && /\/studies$/.test(String(l.path)) && l.status === 200),
    `the study search went to tokengate with the ${via} token`,
  )
}

/** The viewer opened `study`: its metadata and pixel data came through tokengate, all 200. */
async function checkStudyOpens(
  t: Test,
  page: Page,
  since: number,
  study: string,
  name: string,
): Promise<void> {
  const forStudy = () => seen(since).filter((l) => String(l.path).includes(`/studies/${study}`))
  // A viewer that fetched no metadata fetches no pixel data either: stop at the first failure.
  const fetched =
    (await waitFor(t, 'the viewer fetched the series metadata through tokengate', () =>
      forStudy().some((l) => /\/metadata$/.test(String(l.path)) && l.status === 200),
    )) &&
    (await waitFor(t, 'the viewer fetched pixel data (frames) through tokengate', () =>
      forStudy().some((l) => /\/frames\/1$/.test(String(l.path)) && l.status === 200),
    ))
  if (!fetched) return
  // The viewport drew something: cornerstone's canvas is in the page.
  await page.locator('canvas').first().waitFor({ timeout: WAIT_MS })
  await shot(page, `${name}-viewer`)
  const failed = forStudy().filter((l) => l.method !== 'OPTIONS' && (l.status as number) >= 400)
  t.same(
    failed.map((l) => `${l.status} ${l.path}`),
    [],
    'no request for the study was refused',
  )
  t.notOk(
    seen(since).some((l) => String(l.path).includes(out.studyInstanceUID) && l.status === 200),
    'nothing of the study outside the album was served',
  )
}

t.test('through a link token as the data source root: the album only, and a study opens', async (t) => {
  dataSourceRoot = `${gate.url}/api/link/${link.token}`
  const since = accessLog(gate).length
  const page = await browser.context.newPage()
  t.teardown(() => page.close())
  await page.goto(`${viewer.url}/`)
  await checkStudyList(t, page, since, 'link')
  await page.goto(`${viewer.url}/viewer?StudyInstanceUIDs=${in1.studyInstanceUID}`)
  await checkStudyOpens(t, page, since, in1.studyInstanceUID, 'link')
  t.ok(
    seen(since).every((l) => l.via === 'link' || l.method === 'OPTIONS'),
    'every request used the link token',
  )
})

t.test('through a Bearer token the viewer sends: the album only, and a study opens', async (t) => {
  dataSourceRoot = `${gate.url}/api`
  const since = accessLog(gate).length
  const page = await browser.context.newPage()
  t.teardown(() => page.close())
  // OHIF takes a Bearer token from the viewer URL's `token` parameter (and removes it from the URL).
  await page.goto(`${viewer.url}/viewer?StudyInstanceUIDs=${in2.studyInstanceUID}&token=${bearerToken.token}`)
  await checkStudyOpens(t, page, since, in2.studyInstanceUID, 'bearer')
  t.ok(
    seen(since).some((l) => l.method === 'OPTIONS' && l.status === 204),
    'the browser sent preflights (Authorization is no simple header) and tokengate answered them',
  )
  t.ok(
    seen(since).some((l) => l.via === 'bearer' && l.status === 200),
    'requests carried the Bearer token',
  )
  t.notMatch(page.url(), bearerToken.token, 'OHIF took the token out of the address bar')
  // Back to the study list inside the app: the same token goes with its search.
  const listSince = accessLog(gate).length
  // (React Router follows history changes; a string keeps DOM types out of this Node test.)
  await page.evaluate("history.pushState(null, '', '/'); dispatchEvent(new PopStateEvent('popstate'))")
  await checkStudyList(t, page, listSince, 'bearer')
})

t.test('without a token the viewer gets refusals it can read (CORS on the 401)', async (t) => {
  dataSourceRoot = `${gate.url}/api`
  const since = accessLog(gate).length
  const page = await browser.context.newPage()
  t.teardown(() => page.close())
  const refused = page.waitForResponse((r) => r.url().startsWith(`${gate.url}/api/studies`), {
    timeout: WAIT_MS,
  })
  await page.goto(`${viewer.url}/`)
  const res = await refused
  t.equal(res.status(), 401, 'the page read the 401 (a CORS failure would show as no status)')
  t.equal(res.headers()['access-control-allow-origin'], viewer.url)
  await shot(page, 'anonymous-list')
  t.ok(
    seen(since).some((l) => l.status === 401 && l.reason === 'none'),
    'tokengate refused the search without a credential',
  )
})
