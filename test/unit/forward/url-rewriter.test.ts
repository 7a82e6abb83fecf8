// The DICOM JSON URL rewriter (forward/url-rewriter.ts): RetrieveURL and BulkDataURI values move
// from the upstream's base to tokengate's, everything else passes byte for byte, and the result is
// the same however the body is split into chunks (a URL, a key or an escape cut in two).
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import t from 'tap'
import {
  DicomJsonUrlRewriter,
  isJsonContentType,
  rewriteDicomJsonUrls,
  rewriteUrl,
  type UrlRewrite,
} from '../../../src/forward/url-rewriter.js'

const spec: UrlRewrite = {
  bases: [
    ['http://gate:8080/dicom-web', 'https://pacs.example/api/link/tg_secret'],
    ['http://127.0.0.1:8042/dicom-web', 'https://pacs.example/api/link/tg_secret'],
  ],
}

async function run(input: Buffer, cuts: number[], s: UrlRewrite = spec): Promise<string> {
  const parts: Buffer[] = []
  let at = 0
  for (const cut of [...cuts, input.length]) {
    parts.push(input.subarray(at, cut))
    at = cut
  }
  return (await buffer(Readable.from(parts).pipe(new DicomJsonUrlRewriter(s)))).toString('utf8')
}

const ORTHANC_METADATA = `[
\t{
\t\t"00080018" : { "Value" : [ "1.2.3.4" ], "vr" : "UI" },
\t\t"00081190" : { "Value" : [ "http://gate:8080/dicom-web/studies/1.2/series/1.3/instances/1.2.3.4" ], "vr" : "UR" },
\t\t"00400275" : { "vr" : "SQ", "Value" : [ { "00081190" : { "vr" : "UR", "Value" : [ "http://127.0.0.1:8042/dicom-web/studies/9" ] } } ] },
\t\t"00100010" : { "Value" : [ { "Alphabetic" : "http://gate:8080/dicom-web/not-a-url-field" } ], "vr" : "PN" },
\t\t"00081199" : { "vr" : "SQ", "Value" : [] },
\t\t"7FE00010" : { "BulkDataURI" : "http://gate:8080/dicom-web/studies/1.2/series/1.3/instances/1.2.3.4/bulk/7fe00010", "vr" : "OB" },
\t\t"00091010" : { "vr" : "UT", "Value" : [ "http://gate:8080/dicom-web/studies/1.2" ] },
\t\t"BulkDataURI" : 12
\t}
]
`

const EXPECTED = ORTHANC_METADATA.replace(
  '"http://gate:8080/dicom-web/studies/1.2/series/1.3/instances/1.2.3.4"',
  '"https://pacs.example/api/link/tg_secret/studies/1.2/series/1.3/instances/1.2.3.4"',
)
  .replace(
    '"http://127.0.0.1:8042/dicom-web/studies/9"',
    '"https://pacs.example/api/link/tg_secret/studies/9"',
  )
  .replace(
    '"http://gate:8080/dicom-web/studies/1.2/series/1.3/instances/1.2.3.4/bulk/7fe00010"',
    '"https://pacs.example/api/link/tg_secret/studies/1.2/series/1.3/instances/1.2.3.4/bulk/7fe00010"',
  )

t.test('RetrieveURL values (nested too) and BulkDataURI are rewritten; other strings are not', async (t) => {
  const out = await run(Buffer.from(ORTHANC_METADATA), [])
  t.equal(out, EXPECTED)
  t.match(out, '"Alphabetic" : "http://gate:8080/dicom-web/not-a-url-field"', 'a person name is left alone')
  t.match(
    out,
    '"Value" : [ "http://gate:8080/dicom-web/studies/1.2" ] }',
    'another tag holding a URL is left alone',
  )
})

t.test(
  'the whole-body form gives the same output as the stream, and null when nothing changed',
  async (t) => {
    t.equal(rewriteDicomJsonUrls(Buffer.from(ORTHANC_METADATA), spec)?.toString('utf8'), EXPECTED)
    const foreign = ORTHANC_METADATA.replaceAll('http://gate:8080', 'http://other:1').replaceAll(
      'http://127.0.0.1:8042',
      'http://other:1',
    )
    t.equal(rewriteDicomJsonUrls(Buffer.from(foreign), spec), null)
    t.equal(rewriteDicomJsonUrls(Buffer.alloc(0), spec), null, 'an empty body (HEAD, 204) is unchanged')
    // Truncated inside a URL: what was held comes back, and the result is still "unchanged".
    const cut = Buffer.from(ORTHANC_METADATA.slice(0, ORTHANC_METADATA.indexOf('/studies/1.2/series')))
    t.equal(rewriteDicomJsonUrls(cut, spec), null)
  },
)

t.test('every split of the body into two chunks gives the same output', async (t) => {
  const input = Buffer.from(ORTHANC_METADATA)
  let bad = 0
  for (let cut = 0; cut <= input.length; cut++) {
    if ((await run(input, [cut])) !== EXPECTED) bad++
  }
  t.equal(bad, 0, `all ${input.length + 1} two-chunk splits`)
})

t.test('one byte per chunk gives the same output', async (t) => {
  const input = Buffer.from(ORTHANC_METADATA)
  t.equal(
    await run(
      input,
      Array.from({ length: input.length - 1 }, (_, i) => i + 1),
    ),
    EXPECTED,
  )
})

t.test('escapes are honoured: an escaped quote does not end a string, \\/ is decoded', async (t) => {
  const input = String.raw`[{"00081190":{"vr":"UR","Value":["http:\/\/gate:8080\/dicom-web\/studies\/1"]},"0008103E":{"vr":"LO","Value":["a \"00081190\" b \\"]}}]`
  // The rewritten URL is written back with JSON.stringify's escaping (no escaped slashes).
  const want = input.replace(
    String.raw`http:\/\/gate:8080\/dicom-web\/studies\/1`,
    'https://pacs.example/api/link/tg_secret/studies/1',
  )
  t.not(want, input)
  const body = Buffer.from(input)
  for (let cut = 0; cut <= body.length; cut++) t.equal(await run(body, [cut]), want, `cut at ${cut}`)
})

t.test('multi-byte characters split across chunks pass through intact', async (t) => {
  const input = Buffer.from(
    '[{"00100010":{"vr":"PN","Value":[{"Alphabetic":"Müller^Zoë 山田"}]},"00081190":{"vr":"UR","Value":["http://gate:8080/dicom-web/studies/ü"]}}]',
  )
  const want = input
    .toString('utf8')
    .replace('http://gate:8080/dicom-web/studies/ü', 'https://pacs.example/api/link/tg_secret/studies/ü')
  for (let cut = 0; cut <= input.length; cut++) t.equal(await run(input, [cut]), want)
})

t.test('only prefixes at a path boundary and of a listed base are rewritten', async (t) => {
  t.equal(rewriteUrl('http://gate:8080/dicom-webx/studies', spec), 'http://gate:8080/dicom-webx/studies')
  t.equal(rewriteUrl('http://other:8080/dicom-web/studies', spec), 'http://other:8080/dicom-web/studies')
  t.equal(rewriteUrl('http://gate:8080/dicom-web', spec), 'https://pacs.example/api/link/tg_secret')
  t.equal(rewriteUrl('http://gate:8080/dicom-web?x=1', spec), 'https://pacs.example/api/link/tg_secret?x=1')
})

t.test('a string longer than 64 KiB in a URL position passes through unchanged', async (t) => {
  const long = `http://gate:8080/dicom-web/${'x'.repeat(70_000)}`
  const input = Buffer.from(
    JSON.stringify([{ '00081190': { vr: 'UR', Value: [long, 'http://gate:8080/dicom-web/a'] } }]),
  )
  const out = await run(input, [100, 40_000, 69_000])
  const want = input
    .toString()
    .replace('"http://gate:8080/dicom-web/a"', '"https://pacs.example/api/link/tg_secret/a"')
  t.equal(out, want)
  t.equal(rewriteDicomJsonUrls(input, spec)?.toString(), want, 'the whole-body rewrite too')
})

t.test('something that is not JSON passes through byte for byte', async (t) => {
  const input = Buffer.from('<html>"00081190" [ { } "unterminated')
  t.equal(await run(input, [5, 17]), input.toString())
})

t.test('DICOM JSON and JSON content types are recognised, others are not', async (t) => {
  t.ok(isJsonContentType('application/dicom+json'))
  t.ok(isJsonContentType('Application/JSON; charset=utf-8'))
  t.notOk(isJsonContentType('multipart/related; type="application/dicom"'))
  t.notOk(isJsonContentType('application/dicom+xml'))
  t.notOk(isJsonContentType(undefined))
})

t.test(
  'whole bodies: the byte scan skips only bodies that hold no upstream prefix and no escape',
  async (t) => {
    const needles = spec.bases.map(([from]) => Buffer.from(from))
    for (const s of [spec, { ...spec, needles }]) {
      // Nothing of the upstream's: unchanged (null), as the lexer would say.
      const foreign = Buffer.from(
        ORTHANC_METADATA.replaceAll('http://gate:8080', 'http://other:1').replace('127.0.0.1:8042', 'x:1'),
      )
      t.equal(rewriteDicomJsonUrls(foreign, s), null)
      // A prefix in the bytes: rewritten as the stream would.
      t.equal(rewriteDicomJsonUrls(Buffer.from(ORTHANC_METADATA), s)?.toString(), EXPECTED)
      // `\/` hides the prefix from a byte scan: the escape sends the body to the lexer.
      const escaped = Buffer.from(
        String.raw`[{"00081190":{"vr":"UR","Value":["http:\/\/gate:8080\/dicom-web\/studies\/1"]}}]`,
      )
      t.equal(
        rewriteDicomJsonUrls(escaped, s)?.toString(),
        '[{"00081190":{"vr":"UR","Value":["https://pacs.example/api/link/tg_secret/studies/1"]}}]',
      )
      // Every body gives what the stream gives (null: the same bytes).
      for (const body of [
        foreign,
        Buffer.from(ORTHANC_METADATA),
        escaped,
        Buffer.from('[]'),
        Buffer.from('not json'),
      ])
        t.equal((rewriteDicomJsonUrls(body, s) ?? body).toString(), await run(body, []))
    }
  },
)
