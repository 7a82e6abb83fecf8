// Generated inputs: DICOM-JSON-like answers (nested objects and arrays, RetrieveURL `Value`
// arrays, BulkDataURI members, the same keys and URLs in places that are not URL positions,
// numbers and literals between them, compact or pretty-printed) holding the upstream's prefixes
// and near-misses. Invariant: the whole-body rewrite of an answer without escapes (url-scan.ts,
// which reads back from each prefix it finds) gives exactly the bytes the streaming lexer
// (url-rewriter.ts) gives, and leaves the body alone (null) exactly when the lexer changes nothing.
// 1,000 cases in npm test; `npm run test:fuzz` (TG_FUZZ_RUNS=10000) for the full run.
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import fc from 'fast-check'
import t from 'tap'
import {
  DicomJsonUrlRewriter,
  rewriteDicomJsonUrls,
  type UrlRewrite,
} from '../../src/forward/url-rewriter.js'
import { params, RUNS } from './arbitraries.js'

const spec: UrlRewrite = {
  bases: [
    ['http://"127.0.0.1:8042"/dicom-web', 'https://gate.example/api'],
    ['http://127.0.0.1:8042/dicom-web', 'https://gate.example/api'],
    ['http://127.0.0.1:8042/wado', 'https://gate.example/api/wado'],
  ],
}

// Strings with no character JSON.stringify escapes: the answer holds no backslash.
const url = fc.oneof(
  fc.constantFrom(
    'http://127.0.0.1:8042/dicom-web/studies/1.2.3',
    'http://127.0.0.1:8042/dicom-web',
    'http://127.0.0.1:8042/dicom-webx/studies/1',
    'http://"127.0.0.1:8042"/dicom-web/studies/9/series/8',
    'http://127.0.0.1:8042/wado?requestType=WADO',
    'http://other:8042/dicom-web/studies/1',
    'xhttp://127.0.0.1:8042/dicom-web/studies/1',
  ),
  fc
    .string({ unit: fc.constantFrom('a', '/', ':', '.', '1', ' ', 'é', '{', '[', ',') })
    .map((tail) => `http://127.0.0.1:8042/dicom-web/${tail}`),
)
const plain = fc.string({ unit: fc.constantFrom('a', 'B', '1', ' ', ':', ',', '{', ']', 'ü', '山') })
const key = fc.constantFrom(
  'Value',
  'BulkDataURI',
  '00081190',
  'vr',
  '00100010',
  'value',
  'InlineBinary',
  '0008119',
)
const leaf = fc.oneof(
  url,
  plain,
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(true, false, null),
)

const { json } = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    tie('array'),
    tie('object'),
    tie('attribute'),
  ),
  array: fc.array(tie('json'), { maxLength: 4 }),
  object: fc.dictionary(key, tie('json'), { maxKeys: 4 }),
  // A DICOM JSON attribute: { vr, Value: [...] } or { vr, BulkDataURI }, under a tag that may be RetrieveURL.
  attribute: fc
    .record({
      tag: fc.constantFrom('00081190', '00081190', '00400275', '7FE00010'),
      before: fc.boolean(),
      values: fc.array(fc.oneof(url, url, tie('json')), { maxLength: 3 }),
      bulk: fc.option(url),
    })
    .map(({ tag, before, values, bulk }) => {
      const attr: Record<string, unknown> = before ? { vr: 'UR', Value: values } : { Value: values, vr: 'UR' }
      if (bulk !== null) attr.BulkDataURI = bulk
      return { [tag]: attr }
    }),
}))

async function lexed(body: Buffer): Promise<string> {
  return (await buffer(Readable.from([body]).pipe(new DicomJsonUrlRewriter(spec)))).toString('utf8')
}

t.test(
  `a whole answer without escapes is rewritten exactly as the lexer rewrites it (${RUNS} runs)`,
  async (t) => {
    let rewritten = 0
    await fc.assert(
      fc.asyncProperty(json, fc.constantFrom(undefined, 1, '\t', '  '), async (value, indent) => {
        const body = Buffer.from(JSON.stringify(value, null, indent) ?? 'null')
        if (body.includes(0x5c)) return // escapes go to the lexer anyway
        const whole = rewriteDicomJsonUrls(body, spec)
        const want = await lexed(body)
        if (whole === null) {
          if (want !== body.toString('utf8')) throw new Error(`left alone, but the lexer changed it: ${body}`)
          return
        }
        rewritten++
        if (whole.toString('utf8') !== want) throw new Error(`differs from the lexer: ${body}`)
        if (want === body.toString('utf8'))
          throw new Error(`rewritten, but the lexer changed nothing: ${body}`)
      }),
      params,
    )
    t.ok(rewritten > RUNS / 20, `${rewritten} of ${RUNS} answers had URLs rewritten`)
  },
)
