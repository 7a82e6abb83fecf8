// A forwarder's body path alone, for bench/body-path.js: node:http in front of an undici Pool, a
// download written to the client the way tokengate's Exchange.data does it (variant `pause-each`:
// the upstream paused whenever a write returns false, as before issue 16; `budget`: paused once
// 128 KiB wait, undici's empty chunks skipped, as now) and an upload handed to undici as the
// IncomingMessage (variants `hwm64` / `hwm128`: the upstream socket's highWaterMark, undici's
// default and tokengate's). After each transfer it prints one JSON line: its own CPU per GiB and
// how often it paused the other side.
// Usage: node bench/servers/body-gate.js <upstream port> <variant>
import { createServer } from 'node:http'
import { Pool } from 'undici'

const [upstreamPort, variant = 'budget'] = process.argv.slice(2)
const BUDGET = 128 * 1024
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, {
  connect: /** @type {import('undici').Pool.Options['connect']} */ ({
    highWaterMark: variant === 'hwm64' ? 64 * 1024 : 128 * 1024,
  }),
})

/** @param {NodeJS.CpuUsage} c0 @param {number} bytes @param {number} pauses */
const report = (c0, bytes, pauses) => {
  const c = process.cpuUsage(c0)
  const gib = bytes / 2 ** 30
  process.stdout.write(
    `${JSON.stringify({ variant, cpuSPerGb: (c.user + c.system) / 1e6 / gib, userSPerGb: c.user / 1e6 / gib, pauses })}\n`,
  )
}

const server = createServer((req, res) => {
  const c0 = process.cpuUsage()
  if (req.method === 'GET') {
    let bytes = 0
    let pauses = 0
    let waiting = false
    pool.dispatch(
      { path: req.url ?? '/', method: 'GET' },
      {
        onRequestStart() {},
        onResponseStart(_c, status, headers) {
          res.writeHead(status, { 'content-length': String(headers['content-length']) })
        },
        onResponseData(controller, chunk) {
          bytes += chunk.length
          if (variant === 'budget' && chunk.length === 0) return
          const ok = res.write(chunk)
          const pause = variant === 'budget' ? !ok && res.writableLength >= BUDGET : !ok
          if (pause && !waiting) {
            waiting = true
            pauses++
            controller.pause()
            res.once('drain', () => {
              waiting = false
              controller.resume()
            })
          }
        },
        onResponseEnd() {
          res.end()
          report(c0, bytes, pauses)
        },
        onResponseError(_c, err) {
          res.destroy(err)
        },
      },
    )
    return
  }
  let bytes = 0
  let pauses = 0
  const push = req.push.bind(req)
  req.push = (chunk, encoding) => {
    if (chunk) bytes += chunk.length
    return push(chunk, encoding)
  }
  const pause = req.pause.bind(req)
  req.pause = () => {
    pauses++
    return pause()
  }
  pool
    .request({
      path: '/',
      method: 'POST',
      headers: { 'content-length': req.headers['content-length'] },
      body: req,
    })
    .then(async (answer) => {
      res.writeHead(answer.statusCode)
      res.end(Buffer.from(await answer.body.arrayBuffer()))
      report(c0, bytes, pauses)
    })
    .catch((err) => res.destroy(err))
})
server.listen(0, '127.0.0.1', () =>
  process.send?.(/** @type {import('node:net').AddressInfo} */ (server.address()).port),
)
