// The STOW-RS part guard (forward/stow-parts.ts), in memory: the bytes that go upstream are the
// client's, unchanged, whatever the chunking; each part is held until its study is admitted; a
// refused part errors the stream with none of its bytes out; a body another multipart parser
// could split differently is refused.
import t from 'tap'
import { BadRequest, Conflict } from '../../../src/errors.js'
import { stowBoundary } from '../../../src/forward/stow-parts.js'
import { instance, stowBody } from '../../helpers/dicom.js'
import { runGuard } from '../../helpers/stow-guard.js'

const A = '1.2.3.100'
const B = '1.2.3.200'
const ok = async () => {}
const onlyA = async (p: { study: string }) => {
  if (p.study !== A) throw new Conflict('foreign_study')
}

t.test('the boundary is read only from a plain multipart/related Content-Type', async (t) => {
  t.equal(stowBoundary('multipart/related; type="application/dicom"; boundary=abc-1'), 'abc-1')
  t.equal(stowBoundary('Multipart/Related;boundary=x'), 'x')
  t.equal(stowBoundary('multipart/related; boundary="abc"'), 'abc', 'quoted, as dicomweb-client sends it')
  for (const bad of [
    undefined,
    'application/dicom',
    'multipart/related; type="application/dicom"',
    'multipart/related; boundary="a b"',
    'multipart/related; boundary="',
    'multipart/related; boundary',
    'multipart/related; boundary=a; boundary=b',
    'multipart/related; boundary=a=b',
    'multipart/related; boundary=',
    `multipart/related; boundary=${'x'.repeat(71)}`,
  ]) {
    t.throws(() => stowBoundary(bad), BadRequest, String(bad))
  }
})

t.test('admitted parts pass byte for byte, however the body is cut', async (t) => {
  const { body } = stowBody([instance(A, '9.1'), instance(A, '9.2'), instance(A, '9.3')])
  for (const sizes of [[body.length], [1], [7, 13], [300], [2, 1000]]) {
    const run = await runGuard(body, 'tg-boundary', ok, sizes)
    t.equal(run.error, null, `${sizes}`)
    t.ok(run.out.equals(body), `${sizes}: the same bytes`)
    t.same(
      run.admitted.map((p) => p.sop),
      ['9.1', '9.2', '9.3'],
    )
  }
})

t.test('a refused part errors the stream and none of its bytes go out', async (t) => {
  const second = instance(B, '9.2')
  const { body } = stowBody([instance(A, '9.1'), second, instance(A, '9.3')])
  // Where the refused part begins: the CRLF before its delimiter.
  const secondAt = body.indexOf('\r\n--tg-boundary', body.indexOf('--tg-boundary') + 1)
  for (const sizes of [[body.length], [1], [64]]) {
    const run = await runGuard(body, 'tg-boundary', onlyA, sizes)
    t.type(run.error, Conflict, `${sizes}`)
    t.equal(run.out.indexOf(Buffer.from(B)), -1, `${sizes}: nothing of the refused part`)
    t.ok(run.out.length <= secondAt, `${sizes}: out stops before the refused part's delimiter`)
    t.ok(run.out.equals(body.subarray(0, run.out.length)), 'and is the client bytes')
    t.same(
      run.admitted.map((p) => p.study),
      [A],
    )
  }
})

t.test('bodies other parsers could split differently are refused', async (t) => {
  const file = instance(A, '9.1')
  const good = stowBody([file]).body.toString('latin1')
  const cases: Record<string, string> = {
    preamble: `junk\r\n${good}`,
    'a delimiter without CRLF before it': good.replace('\r\n--tg-boundary--', '--tg-boundary--'),
    'transport padding': good.replace('--tg-boundary\r\n', '--tg-boundary \r\n'),
    'a part Content-Length': good.replace('Content-Type:', 'content-length : 5\r\nContent-Type:'),
    'a base64 part': good.replace('Content-Type:', 'Content-Transfer-Encoding: base64\r\nContent-Type:'),
    'something after the end': `${good}--tg-boundary\r\n`,
    'no close delimiter': good.replace('--tg-boundary--\r\n', ''),
    'a boundary hidden in the data': good.replace('TEST^PATIENT', '--tg-boundary'),
    'the quoted boundary in the data': good.replace('TEST^PATIENT', '--"tg-boundary"'),
  }
  for (const [name, body] of Object.entries(cases)) {
    const run = await runGuard(Buffer.from(body, 'latin1'), 'tg-boundary', ok)
    t.type(run.error, BadRequest, name)
  }
  const notDicom = stowBody([Buffer.from('not a DICOM file')]).body
  t.match((await runGuard(notDicom, 'tg-boundary', ok)).error, { reason: 'bad_dicom' })
  const late = Buffer.concat([instance(A, '9.1').subarray(0, 132), Buffer.alloc(2 * 1024 * 1024)])
  const run = await runGuard(stowBody([late]).body, 'tg-boundary', ok, [64 * 1024])
  t.match(run.error, { reason: 'bad_dicom' }, 'a header that does not parse within the bound')
  t.ok(run.out.length < 64 * 1024, 'held back, not forwarded')
})

t.test('whitespace after the close delimiter and a CRLF before the first are accepted', async (t) => {
  const { body } = stowBody([instance(A, '9.1')])
  const padded = Buffer.concat([Buffer.from('\r\n'), body, Buffer.from('\r\n \r\n')])
  const run = await runGuard(padded, 'tg-boundary', ok, [5])
  t.equal(run.error, null)
  t.ok(run.out.equals(padded))
})
