// `node bench/body-path.js [rounds]`: the body path's cost per GB without tokengate around it
// (bench/servers/body-gate.js), variant against variant: 1 GiB downloads through `pause-each` and
// `budget`, 1 GiB uploads through `hwm64` and `hwm128`, alternating, each gate in its own process
// (its CPU is its own), the upstream and the client in this one. Medians per variant. The numbers
// behind the issue-16 forwarder change (bench/README.md, large transfers). Never part of `npm test`.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { createServer, request } from 'node:http'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { median } from './lib/stats.js'

const rounds = Number(process.argv[2] ?? 4)
const SIZE = 2 ** 30
const CHUNK = Buffer.alloc(1 << 20, 0x42)
const PART = Buffer.alloc(256 * 1024, 0x5a)

// The upstream: a download from one reused buffer, an upload counted away.
const upstream = createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-length': SIZE })
    let left = SIZE
    const write = () => {
      while (left > 0) {
        left -= PART.length
        if (!res.write(PART)) return void res.once('drain', write)
      }
      res.end()
    }
    return write()
  }
  req.resume()
  req.on('end', () => res.end('{}'))
})
upstream.listen(0, '127.0.0.1')
await once(upstream, 'listening')
const upstreamPort = /** @type {import('node:net').AddressInfo} */ (upstream.address()).port

/** @param {string} variant */
async function startGate(variant) {
  const child = fork(join(import.meta.dirname, 'servers/body-gate.js'), [String(upstreamPort), variant], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  })
  const [port] = await once(child, 'message')
  /** @type {((line: string) => void)[]} */
  const waiting = []
  if (child.stdout) createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.(line))
  return { child, port: Number(port), next: () => new Promise((resolve) => waiting.push(resolve)) }
}

/** @param {{ port: number, next: () => Promise<unknown> }} gate @param {'download' | 'upload'} direction */
async function run(gate, direction) {
  const line = gate.next()
  const t0 = performance.now()
  await new Promise((resolve, reject) => {
    const upload = direction === 'upload'
    const req = request(
      {
        port: gate.port,
        host: '127.0.0.1',
        method: upload ? 'POST' : 'GET',
        path: '/',
        agent: false,
        headers: upload ? { 'content-length': SIZE } : {},
      },
      (res) => {
        res.resume()
        res.on('end', resolve)
      },
    )
    req.on('error', reject)
    if (!upload) return void req.end()
    let left = SIZE
    const write = () => {
      while (left > 0) {
        left -= CHUNK.length
        if (!req.write(CHUNK)) return void req.once('drain', write)
      }
      req.end()
    }
    write()
  })
  const mbPerS = SIZE / 2 ** 20 / ((performance.now() - t0) / 1000)
  return { ...JSON.parse(String(await line)), mbPerS }
}

/** @type {['download' | 'upload', string[]][]} */
const plan = [
  ['download', ['pause-each', 'budget']],
  ['upload', ['hwm64', 'hwm128']],
]
const out = [
  `body path, 1 GiB per transfer, ${rounds} alternating rounds, medians (CPU of the gate process)`,
  '',
  '| direction | variant | CPU s/GB | user s/GB | MB/s | pauses per GB |',
  '| --- | --- | ---: | ---: | ---: | ---: |',
]
for (const [direction, variants] of plan) {
  const gates = await Promise.all(variants.map(startGate))
  /** @type {Record<string, { cpuSPerGb: number, userSPerGb: number, mbPerS: number, pauses: number }[]>} */
  const results = {}
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...variants].reverse() : variants
    for (const v of order) {
      const gate = gates[variants.indexOf(v)]
      if (!gate) throw new Error(`no gate for ${v}`)
      const res = await run(gate, direction)
      results[v] = [...(results[v] ?? []), res]
      process.stderr.write(
        `  ${direction} ${v}: ${res.cpuSPerGb.toFixed(2)} s/GB, ${Math.round(res.mbPerS)} MB/s, ${res.pauses} pauses\n`,
      )
    }
  }
  for (const g of gates) g.child.kill()
  for (const v of variants) {
    const rs = results[v] ?? []
    /** @param {(x: typeof rs[number]) => number} f */
    const m = (f) => median(rs.map(f))
    out.push(
      `| ${direction} | ${v} | ${m((x) => x.cpuSPerGb).toFixed(2)} | ${m((x) => x.userSPerGb).toFixed(2)} | ${Math.round(m((x) => x.mbPerS))} | ${Math.round(m((x) => x.pauses))} |`,
    )
  }
}
console.log(out.join('\n'))
upstream.close()
