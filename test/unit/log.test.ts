// Log output (log.ts, log-writer.ts): the access line is the one pino would write; the batched
// writer keeps lines whole and in order, writes on size, on its timer and at exit, keeps what a
// full stdout refuses, and drops (and then reports) past its bound.
import { Writable } from 'node:stream'
import t from 'tap'
import { type AccessEntry, accessLogger, createLogger } from '../../src/log.js'
import { BatchedLineWriter } from '../../src/log-writer.js'
import { waitFor } from '../helpers/wait.js'

function sinkLogger() {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk))
      cb()
    },
  })
  return { log: createLogger('info', sink), lines }
}

const ENTRY: AccessEntry = {
  requestId: 'r-1',
  method: 'GET',
  path: '/api/studies?x="\\\u0001é',
  status: 200,
  mount: '/api',
  via: 'bearer',
  tokenId: 'AbC123',
  user: undefined,
  scope: 'album:a1',
  reason: 'ok',
  cache: 'hit',
  bytesIn: 120,
  bytesOut: 2048,
  authMs: 0.123,
  upstreamMs: 1.5,
  totalMs: 2.25,
  remote: '::1',
}

t.test('the access line is the line pino writes for the same fields', async (t) => {
  for (const entry of [
    ENTRY,
    { ...ENTRY, method: undefined, mount: undefined, user: 'u@x', upstreamMs: 0 },
  ]) {
    const { log, lines } = sinkLogger()
    log.child({}, { redact: { paths: [] } }).info(entry, 'request')
    accessLogger(log).write(entry)
    await waitFor('two lines', () => lines.length === 2)
    const [viaPino, direct] = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    // Only the millisecond of the time may differ.
    t.same({ ...direct, time: 0 }, { ...viaPino, time: 0 })
    t.equal(Object.keys(direct ?? {}).join(), Object.keys(viaPino ?? {}).join(), 'same field order')
    t.ok(lines[1]?.endsWith('}\n'))
  }
  const { log, lines } = sinkLogger()
  accessLogger(log).write({ ...ENTRY, totalMs: Number.NaN })
  await waitFor('a line', () => lines.length === 1)
  t.equal((JSON.parse(lines[0] as string) as { totalMs: unknown }).totalMs, null, 'still JSON')
})

/** A writer over a fake write(2): `refuse` answers EAGAIN, `max` bytes per call at most. */
function fakeWriter(opts: { batchBytes?: number; maxPendingBytes?: number; flushEveryMs?: number } = {}) {
  const out: string[] = []
  const state = { refuse: false, max: Number.POSITIVE_INFINITY, calls: 0 }
  const writer = new BatchedLineWriter(99, {
    flushEveryMs: 60_000,
    ...opts,
    writeSync: (_fd, data) => {
      state.calls++
      if (state.refuse) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' })
      const n = Math.min(data.length, state.max)
      out.push(data.subarray(0, n).toString())
      return n
    },
  })
  return { writer, out, state, text: () => out.join('') }
}

t.test('lines are held until a batch is full, then written in one call, in order', async (t) => {
  const { writer, state, text } = fakeWriter({ batchBytes: 100 })
  t.teardown(() => writer.end())
  for (let i = 0; i < 9; i++) writer.write(`line ${i} ${'x'.repeat(2)}\n`)
  t.equal(state.calls, 0, '90 bytes: nothing written yet')
  writer.write('line 9 xx\n')
  t.equal(state.calls, 1, 'one write for the batch')
  t.equal(text(), Array.from({ length: 10 }, (_, i) => `line ${i} xx\n`).join(''))
})

t.test('the timer writes a partial batch', async (t) => {
  const { writer, text } = fakeWriter({ flushEveryMs: 5 })
  t.teardown(() => writer.end())
  writer.write('one\n')
  await waitFor('the timer wrote it', () => text() === 'one\n')
  t.pass()
})

t.test('a full stdout (EAGAIN) and partial writes lose nothing', async (t) => {
  const { writer, state, text } = fakeWriter({ batchBytes: 10 })
  t.teardown(() => writer.end())
  state.refuse = true
  writer.write('aaaaaaaaaa\n')
  writer.write('bbbbbbbbbb\n')
  t.equal(text(), '', 'refused: held')
  state.refuse = false
  state.max = 3
  writer.flushSync()
  t.equal(text(), 'aaaaaaaaaa\nbbbbbbbbbb\n', 'written in pieces, whole and in order')
})

t.test('past the bound, lines are dropped and the count is reported once writing works', async (t) => {
  const { writer, state, text } = fakeWriter({ batchBytes: 1, maxPendingBytes: 20 })
  t.teardown(() => writer.end())
  state.refuse = true
  writer.write('0123456789\n')
  writer.write('0123456789\n')
  t.equal(writer.write('dropped\n'), false)
  t.equal(writer.write('dropped\n'), false)
  state.refuse = false
  writer.write('after\n')
  const lines = text().trim().split('\n')
  t.same(lines.slice(0, 2), ['0123456789', '0123456789'])
  const note = JSON.parse(lines[2] as string) as { dropped: number; level: string }
  t.equal(note.dropped, 2, 'the count, once the held lines are out')
  t.equal(note.level, 'warn')
  t.equal(lines[3], 'after')
  t.equal(lines.length, 4)
})

t.test('what is held is written when the process exits (its exit hook)', async (t) => {
  const before = process.listeners('exit')
  const { writer, text } = fakeWriter()
  const hooks = process.listeners('exit').filter((l) => !before.includes(l))
  t.equal(hooks.length, 1, 'one exit hook')
  for (let i = 0; i < 5; i++) writer.write(`held ${i}\n`)
  t.equal(text(), '')
  ;(hooks[0] as () => void)()
  t.equal(text(), [0, 1, 2, 3, 4].map((i) => `held ${i}\n`).join(''))
  writer.end()
  t.notOk(process.listeners('exit').includes(hooks[0] as () => void), 'end() removes it')
})

t.test('milliseconds are written rounded to the microsecond, as JSON numbers', async (t) => {
  const { log, lines } = sinkLogger()
  const access = accessLogger(log)
  const values = [
    0, 0.0004, 0.0005, 0.001, 0.01, 0.1, 0.12, 0.123, 0.1234, 1, 1.05, 12.3456, 999.9996, 86_400_000.5,
  ]
  for (let i = 0; i < 200; i++) values.push(Math.random() * 10 ** Math.floor(Math.random() * 6))
  for (const v of values) access.write({ ...ENTRY, authMs: v, upstreamMs: v, totalMs: v })
  await waitFor('every line', () => lines.length === values.length)
  lines.forEach((line, i) => {
    const v = values[i] as number
    const parsed = JSON.parse(line) as { authMs: number; totalMs: number }
    t.equal(parsed.authMs, Math.round(v * 1000) / 1000, `${v}`)
  })
  t.notMatch(lines.join(''), /\.\d*0[,}]/, 'no trailing zeros after the point')
})

t.test('lines are written in pieces of whole lines of at most 4 KiB (atomic on a pipe)', async (t) => {
  const { writer, out } = fakeWriter({ batchBytes: 64 * 1024 })
  t.teardown(() => writer.end())
  const lines = Array.from({ length: 300 }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(i % 97)}"}\n`)
  const long = `{"long":"${'y'.repeat(5000)}"}\n`
  for (const line of [...lines.slice(0, 150), long, ...lines.slice(150)]) writer.write(line)
  writer.flushSync()
  t.equal(out.join(''), [...lines.slice(0, 150), long, ...lines.slice(150)].join(''))
  for (const piece of out) {
    t.ok(piece.endsWith('\n'), 'each write ends a line')
    if (piece !== long) t.ok(Buffer.byteLength(piece) <= 4096, `${Buffer.byteLength(piece)} bytes`)
  }
  t.ok(out.length > 1)
})
