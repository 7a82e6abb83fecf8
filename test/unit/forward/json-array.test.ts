// Reading the elements of a JSON array from a byte stream (forward/json-array.ts), as split QIDO
// searches do: the same elements whatever the chunking, brackets and quotes inside strings do not
// confuse it, and a body that is not one array is refused.
import { Readable } from 'node:stream'
import t from 'tap'
import { arrayElements, NotAJsonArray } from '../../../src/forward/json-array.js'

async function elements(input: string, cuts: number[] = []): Promise<string[]> {
  const body = Buffer.from(input)
  const chunks: Buffer[] = []
  let at = 0
  for (const cut of [...cuts, body.length]) {
    chunks.push(body.subarray(at, cut))
    at = cut
  }
  const out: string[] = []
  for await (const e of arrayElements(Readable.from(chunks))) out.push(e.toString('utf8'))
  return out
}

const QIDO = `[
\t{ "0020000D" : { "vr" : "UI", "Value" : [ "1.2.3" ] }, "00081030" : { "vr" : "LO", "Value" : [ "a ] \\" } [ { , ü" ] } },
\t{ "0020000D" : { "vr" : "UI", "Value" : [ "1.2.4" ] } }
]
`

t.test('each element is returned byte for byte, whatever the two-chunk split', async (t) => {
  const want = JSON.parse(QIDO).map((e: unknown) => e)
  const whole = await elements(QIDO)
  t.equal(whole.length, 2)
  t.same(
    whole.map((e) => JSON.parse(e)),
    want,
  )
  t.match(whole[0], /^\{ "0020000D".*ü" \] \} \}$/)
  const bytes = Buffer.byteLength(QIDO)
  let bad = 0
  for (let cut = 0; cut <= bytes; cut++) {
    const got = await elements(QIDO, [cut])
    if (JSON.stringify(got) !== JSON.stringify(whole)) bad++
  }
  t.equal(bad, 0)
})

t.test('one byte per chunk gives the same elements', async (t) => {
  const n = Buffer.byteLength(QIDO)
  t.same(
    await elements(
      QIDO,
      Array.from({ length: n - 1 }, (_, i) => i + 1),
    ),
    await elements(QIDO),
  )
})

t.test('empty arrays, scalars and strings as elements', async (t) => {
  t.same(await elements('[]'), [])
  t.same(await elements(' [ \n ] \n'), [])
  t.same(await elements('[1, true,"a,]b", null ,[2,[3]]]'), ['1', 'true', '"a,]b"', 'null', '[2,[3]]'])
})

t.test('a body that is not one JSON array is refused', async (t) => {
  for (const bad of ['{"error": 1}', '', '[{"a": 1}', '[1] [2]', 'Error 400: Bad Request']) {
    await t.rejects(elements(bad), NotAJsonArray, JSON.stringify(bad))
  }
})
