// The operations listener, apart from the public one (so it can stay on loopback or an internal
// interface): GET /metrics (Prometheus text), GET /healthz (the process answers), GET /readyz
// (Redis answers and every upstream accepts a TCP connection; 503 names what failed, and says
// so while shutting down, so a load balancer stops sending before the listener closes).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { listenOn } from '../server/listen.js'

export interface ReadinessChecks {
  /** Resolves when the token store answers. */
  store(): Promise<void>
  /** Upstream base URLs to probe, by name (`mount /api`, `mount /api wado`). */
  upstreams(): ReadonlyMap<string, URL>
  /** True once a graceful shutdown has begun. */
  shuttingDown(): boolean
  /** More named checks ('ok' or what is wrong), e.g. the worker count of a multi-process server. */
  extra?(): Record<string, string>
}

/** Where /metrics text comes from: a prom-client Registry, or the workers' aggregate. */
export interface MetricsSource {
  metrics(): Promise<string>
  readonly contentType: string
}

export interface OpsServer {
  listen(host: string, port: number): Promise<AddressInfo>
  close(): Promise<void>
}

const CHECK_TIMEOUT_MS = 1000

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms)
    p.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e)
      },
    )
  })
}

/** A TCP connection to the upstream's host and port: reachable, whatever its HTTP paths. */
function probe(url: URL): Promise<void> {
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port })
    socket.setTimeout(CHECK_TIMEOUT_MS, () => socket.destroy(new Error('timeout')))
    socket.once('connect', () => {
      socket.destroy()
      resolve()
    })
    socket.once('error', reject)
  })
}

/** A short, secret-free word for what failed: the GateError reason or the errno code. */
function failure(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { reason?: string }
  return e?.reason ?? e?.code ?? (e?.message === 'timeout' ? 'timeout' : 'error')
}

export function createOpsServer(registry: MetricsSource, checks: ReadinessChecks): OpsServer {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n')
    if (path === '/healthz') return send(200, 'application/json', '{"status":"ok"}\n')
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => send(200, registry.contentType, text),
        (err: unknown) => send(500, 'text/plain', `metrics failed: ${failure(err)}\n`),
      )
      return
    }
    if (path === '/readyz') {
      void ready(checks).then(({ ok, body }) =>
        send(ok ? 200 : 503, 'application/json', `${JSON.stringify(body)}\n`),
      )
      return
    }
    send(404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n')
  })
  return {
    listen: (host, port) => listenOn(server, host, port),
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

async function ready(
  checks: ReadinessChecks,
): Promise<{ ok: boolean; body: { status: string; checks: Record<string, string> } }> {
  const results: Record<string, string> = {}
  if (checks.shuttingDown()) results.shutdown = 'shutting down'
  Object.assign(results, checks.extra?.())
  const pending: Promise<void>[] = [
    withTimeout(checks.store(), CHECK_TIMEOUT_MS).then(
      () => {
        results.redis = 'ok'
      },
      (err: unknown) => {
        results.redis = failure(err)
      },
    ),
  ]
  for (const [name, url] of checks.upstreams()) {
    pending.push(
      probe(url).then(
        () => {
          results[name] = 'ok'
        },
        (err: unknown) => {
          results[name] = failure(err)
        },
      ),
    )
  }
  await Promise.all(pending)
  const ok = Object.values(results).every((v) => v === 'ok')
  return { ok, body: { status: ok ? 'ready' : 'not ready', checks: results } }
}
