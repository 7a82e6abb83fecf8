// The demo behind `npm run demo`: Redis and Orthanc (with DICOMweb) on local ports, four synthetic
// studies, tokengate on 127.0.0.1:8080 in front of Orthanc with `scoping: studies` — two albums and
// an inbox whose study sets tokengate enforces itself, so an album token over the plain Orthanc
// behaves like a private PACS holding only that album — and the README's curl lines with the
// tokens filled in (each tried once, so a broken line shows, with the studies it saw).
// Everything runs in the background; state and logs are in .demo/; `npm run demo -- stop` ends it.
import { execFile, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startOrthanc } from './lib/orthanc.js'
import { freePort, redisServerArgs } from './lib/ports.js'

const root = join(import.meta.dirname, '..')
const state = join(root, '.demo')
const pidsFile = join(state, 'pids.json')
const bin = join(root, 'bin', 'tokengate.js')
const run = promisify(execFile)

/** @param {number} port */
function portFree(port) {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' })
    s.once('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.once('error', () => resolve(true))
  })
}

/** @param {number} preferred */
async function pickPort(preferred) {
  return (await portFree(preferred)) ? preferred : freePort()
}

async function stop() {
  if (!existsSync(pidsFile)) return false
  /** @type {Record<string, number>} */
  const pids = JSON.parse(readFileSync(pidsFile, 'utf8'))
  for (const [name, pid] of Object.entries(pids)) {
    try {
      process.kill(pid, 'SIGTERM')
      console.log(`stopped ${name} (pid ${pid})`)
    } catch {
      // already gone
    }
  }
  await rm(pidsFile, { force: true })
  // Wait for them to exit (Orthanc takes a few seconds), so a restart finds its ports free.
  const alive = (/** @type {number} */ pid) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  for (let i = 0; i < 100 && Object.values(pids).some(alive); i++)
    await new Promise((r) => setTimeout(r, 100))
  return true
}

/**
 * @param {string} name @param {string} cmd @param {string[]} args
 * @returns {number}
 */
function daemon(name, cmd, args) {
  const log = openSync(join(state, `${name}.log`), 'a')
  const proc = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log] })
  closeSync(log)
  proc.unref()
  if (proc.pid === undefined) throw new Error(`could not start ${cmd}`)
  return proc.pid
}

/** @param {() => Promise<boolean>} check @param {string} what */
async function waitFor(check, what) {
  for (let i = 0; i < 150; i++) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${what} did not start; see ${state}/*.log`)
}

/** @param {string[]} args @param {string} config */
async function tokengate(args, config) {
  const { stdout } = await run(process.execPath, [bin, ...args, '--config', config])
  return stdout
}

/**
 * Try a curl line once: its status, and for a QIDO search how many results it gave.
 * @param {string} url @param {Record<string, string>} headers
 */
async function tryLine(url, headers = {}) {
  const res = await fetch(url, { headers })
  const body = await res.text()
  if (res.ok && /json/.test(res.headers.get('content-type') ?? '') && body.startsWith('[')) {
    const n = JSON.parse(body).length
    return `${res.status}, ${n} result${n === 1 ? '' : 's'}`
  }
  return String(res.status)
}

async function start() {
  if (await stop()) console.log('(restarting the demo)')
  await mkdir(state, { recursive: true })
  /** @type {Record<string, number>} */
  const pids = {}
  const save = () => writeFile(pidsFile, JSON.stringify(pids, null, 2))

  const redisPort = await pickPort(6390)
  pids.redis = daemon('redis', 'redis-server', redisServerArgs(redisPort))
  await save()
  await waitFor(async () => !(await portFree(redisPort)), 'redis-server')

  await rm(join(state, 'orthanc'), { recursive: true, force: true })
  const orthanc = await startOrthanc({
    port: await pickPort(8042),
    dir: join(state, 'orthanc'),
    logFile: join(state, 'orthanc.log'),
    detached: true,
  })
  if (orthanc.pid) pids.orthanc = orthanc.pid
  await save()
  const studies = []
  for (const [name, description] of [
    ['DEMO^ALICE', 'CT chest'],
    ['DEMO^BOB', 'MR knee'],
    ['DEMO^CAROL', 'XR hand'],
    ['DEMO^DAVE', 'US abdomen'],
  ]) {
    studies.push(await orthanc.createStudy({ patientName: name, studyDescription: description }))
  }
  const [s1, s2, s3, s4] = studies
  if (!s1 || !s2 || !s3 || !s4) throw new Error('the studies were not created')

  const port = await pickPort(8080)
  const config = join(state, 'tokengate.yaml')
  await writeFile(
    config,
    `# Written by npm run demo. See config/tokengate.yaml for every key.
listen: { host: 127.0.0.1, port: ${port} }
redis: { url: "redis://127.0.0.1:${redisPort}", keyPrefix: "tg:" }
mounts:
  - path: /api
    upstream: ${orthanc.dicomWebUrl}
    wado: ${orthanc.wadoUrl}
    wadoNormalizeQuery: true
# Orthanc knows nothing of albums: tokengate enforces the study sets in Redis itself.
scoping: studies
cache: { max: 100000, ttl: 30s, negativeTtl: 5s }
`,
  )
  pids.tokengate = daemon('tokengate', process.execPath, [bin, 'serve', '--config', config])
  await save()
  const base = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${base}/api/studies`)).status === 401, 'tokengate')

  /** @param {string[]} args */
  const create = async (args) =>
    JSON.parse(await tokengate(['token', 'create', ...args, '--expires', '7d', '--json'], config))
  const album = await create(['--kind', 'album', '--album', 'demo-album', '--perms', 'read,download'])
  const other = await create(['--kind', 'album', '--album', 'other-album', '--perms', 'read'])
  const user = await create(['--kind', 'user', '--user', 'alice'])
  // Study sets: demo-album holds two studies, other-album one, alice's inbox the fourth.
  await tokengate(['album', 'add-study', 'demo-album', s1.studyInstanceUID, s2.studyInstanceUID], config)
  await tokengate(['album', 'add-study', 'other-album', s3.studyInstanceUID], config)
  await tokengate(['inbox', 'add-study', 'alice', s4.studyInstanceUID], config)
  await tokengate(['album', 'add-member', 'demo-album', 'alice'], config)

  const wado = `studyUID=${s1.studyInstanceUID}&seriesUID=${s1.seriesInstanceUID}&objectUID=${s1.sopInstanceUID}&requestType=WADO&contentType=image%2Fjpeg`
  const hostPort = base.replace('http://', '')
  const auth = (/** @type {string} */ t) => ({ authorization: `Bearer ${t}` })
  /** @type {[string, string, () => Promise<string>][]} */
  const lines = [
    [
      "Bearer (album token): demo-album is the whole PACS, 2 of Orthanc's 4 studies",
      `curl ${base}/api/studies -H "Authorization: Bearer ${album.token}"`,
      () => tryLine(`${base}/api/studies`, auth(album.token)),
    ],
    [
      'Basic: the user name is ignored',
      `curl http://token:${album.token}@${hostPort}/api/studies`,
      () =>
        tryLine(`${base}/api/studies`, {
          authorization: `Basic ${Buffer.from(`token:${album.token}`).toString('base64')}`,
        }),
    ],
    [
      'the token in the path; RetrieveURLs in the answer keep /link/<token>/',
      `curl ${base}/api/link/${album.token}/studies`,
      () => tryLine(`${base}/api/link/${album.token}/studies`),
    ],
    [
      'series and instance searches are narrowed too',
      `curl ${base}/api/instances -H "Authorization: Bearer ${album.token}"`,
      () => tryLine(`${base}/api/instances`, auth(album.token)),
    ],
    [
      'another album token sees only other-album (1 study)',
      `curl ${base}/api/studies -H "Authorization: Bearer ${other.token}"`,
      () => tryLine(`${base}/api/studies`, auth(other.token)),
    ],
    [
      "a study of demo-album does not exist for other-album's token (404)",
      `curl -i ${base}/api/studies/${s1.studyInstanceUID}/metadata -H "Authorization: Bearer ${other.token}"`,
      () => tryLine(`${base}/api/studies/${s1.studyInstanceUID}/metadata`, auth(other.token)),
    ],
    [
      'asking for it by StudyInstanceUID finds nothing either',
      `curl "${base}/api/studies?StudyInstanceUID=${s1.studyInstanceUID}" -H "Authorization: Bearer ${other.token}"`,
      () => tryLine(`${base}/api/studies?StudyInstanceUID=${s1.studyInstanceUID}`, auth(other.token)),
    ],
    [
      'user token: its albums and its inbox together (3 studies)',
      `curl ${base}/api/studies -H "Authorization: Bearer ${user.token}"`,
      () => tryLine(`${base}/api/studies`, auth(user.token)),
    ],
    [
      'user token, one of its albums',
      `curl "${base}/api/studies?album=demo-album" -H "Authorization: Bearer ${user.token}"`,
      () => tryLine(`${base}/api/studies?album=demo-album`, auth(user.token)),
    ],
    [
      'user token, its inbox',
      `curl "${base}/api/studies?inbox=true" -H "Authorization: Bearer ${user.token}"`,
      () => tryLine(`${base}/api/studies?inbox=true`, auth(user.token)),
    ],
    [
      'WADO-URI, a JPEG of the first instance',
      `curl "${base}/api/wado?${wado}" -H "Authorization: Bearer ${album.token}" -o /tmp/tokengate-demo.jpg`,
      () => tryLine(`${base}/api/wado?${wado}`, auth(album.token)),
    ],
    [
      'a zip: Orthanc has none, tokengate says so (406)',
      `curl -i ${base}/api/studies/${s1.studyInstanceUID} -H "Accept: application/zip" -H "Authorization: Bearer ${album.token}"`,
      () =>
        tryLine(`${base}/api/studies/${s1.studyInstanceUID}`, {
          ...auth(album.token),
          accept: 'application/zip',
        }),
    ],
    ['refused: no token (401)', `curl -i ${base}/api/studies`, () => tryLine(`${base}/api/studies`)],
  ]

  console.log(`
tokengate demo is running (state and logs in .demo/):
  tokengate  ${base}  →  Orthanc ${orthanc.url} (DICOMweb ${orthanc.dicomWebUrl})
  Redis      redis://127.0.0.1:${redisPort}
  studies    ${studies.map((x) => x.studyInstanceUID).join('\n             ')}
  album token (demo-album: studies 1 and 2, read+download)  id ${album.id}
  album token (other-album: study 3, read)                  id ${other.id}
  user token  (alice: member of demo-album, study 4 in her inbox) id ${user.id}

Try these:
`)
  for (const [what, line, check] of lines) {
    const status = await check()
    console.log(`# ${what}  [${status}]\n${line}\n`)
  }
  console.log(`The CLI against this demo (npm run tg -- … is tokengate … with --config .demo/tokengate.yaml):
Manage tokens:  npm run tg -- token list
Revoke one:     npm run tg -- token revoke ${album.id}
Album studies:  npm run tg -- album studies demo-album
Add one:        npm run tg -- album add-study demo-album ${s3.studyInstanceUID}
Or, to type the README's tokengate … commands as written, in this shell:
  alias tokengate='TOKENGATE_CONFIG=${config} node ${join(root, 'bin', 'tokengate.js')}'
Stop the demo:  npm run demo -- stop

scoping: studies: Orthanc knows nothing of albums; tokengate checks every study path against the
token's study set (404 outside it), narrows every search to it, and points the RetrieveURLs in the
answers back at itself.`)
}

if (process.argv[2] === 'stop') {
  if (!(await stop())) console.log('the demo is not running')
} else {
  await start()
}
