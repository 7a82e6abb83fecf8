// Runs the built CLI (`node bin/tokengate.js …`) as a real process: one-shot commands and a
// long-running `serve` that tests stop with a signal. Needs `npm run build` (scripts/test.sh does it).
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { waitFor } from './wait.js'

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tokengate.js')

export interface TokengateRun {
  code: number
  stdout: string
  stderr: string
  /** True when the process had not exited by `timeoutMs` and was killed (a hang, not an exit code). */
  timedOut: boolean
}

export function runTokengate(args: string[], timeoutMs = 30_000): Promise<TokengateRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const timedOut = err?.killed === true
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout, stderr, timedOut })
      },
    )
  })
}

export interface ServeHandle {
  proc: ChildProcess
  url: string
  /** The operations listener (/metrics, /healthz, /readyz), when enabled. */
  opsUrl: string | undefined
  output: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * Start `tokengate serve --config FILE` and wait until it logs that it listens. `nodeArgs` go to
 * node before the script (e.g. `--import` a fixture; workers inherit them).
 */
export async function serveTokengate(configPath: string, nodeArgs: string[] = []): Promise<ServeHandle> {
  const proc = spawn(process.execPath, [...nodeArgs, BIN, 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout?.on('data', (c) => {
    out += c
  })
  proc.stderr?.on('data', (c) => {
    out += c
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tokengate did not start:\n${out}`)), 30_000)
    const check = () => {
      const m = /"msg":"tokengate listening"/.test(out) && /"port":(\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    proc.stdout?.on('data', check)
    proc.on('exit', () => reject(new Error(`tokengate exited:\n${out}`)))
  })
  const metricsPort = /"metricsPort":(\d+)/.exec(out)?.[1]
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    opsUrl: metricsPort ? `http://127.0.0.1:${metricsPort}` : undefined,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode !== null) return proc.exitCode
      const exited = once(proc, 'exit')
      proc.kill(signal)
      const [code] = await exited
      return code as number | null
    },
  }
}

/** Wait until the process output matches `pattern` (after `from` characters), or fail after `ms`. */
export async function waitForOutput(h: ServeHandle, pattern: RegExp, from = 0, ms = 10_000): Promise<void> {
  await waitFor(`${pattern} in the output`, () => pattern.test(h.output().slice(from)), {
    timeoutMs: ms,
    intervalMs: 20,
  }).catch(() => {
    throw new Error(`no ${pattern} in output:\n${h.output()}`)
  })
}

export async function writeConfig(dir: string, name: string, yaml: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, yaml)
  return path
}
