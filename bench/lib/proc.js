// Processes for the benchmark: start servers pinned to the server core (taskset), wait for their
// port, read their CPU time and RSS from /proc, and stop them. CPU time is utime + stime of every
// thread of the process and its descendants (nginx workers), converted from clock ticks.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { availableParallelism } from 'node:os'

/** Clock ticks per second (`getconf CLK_TCK`; 100 on Linux). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()
const PAGE_SIZE = (() => {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096
  } catch {
    return 4096
  }
})()

export const cores = availableParallelism()
export const hasTaskset = cores >= 2 && existsSync('/usr/bin/taskset')
/** The load generator (this process) runs on core 0, every server on the last core. */
export const LOAD_CORE = 0
export const SERVER_CORE = cores - 1

/** Pin this process (all its threads) to the load generator's core. */
export function pinSelf() {
  pinTo(process.pid, LOAD_CORE)
  return hasTaskset
}

/**
 * Move a running process (all its threads) to a core, or a list of them (`'0,1'`).
 * @param {number} pid
 * @param {number | string} core
 */
export function pinTo(pid, core) {
  if (hasTaskset) execFileSync('taskset', ['-a', '-cp', String(core), String(pid)], { stdio: 'ignore' })
}

/**
 * @typedef {object} Server
 * @property {string} name
 * @property {import('node:child_process').ChildProcess} proc
 * @property {number} pid
 * @property {() => string} output  the last few KB the process wrote
 * @property {() => Promise<void>} stop
 */

/**
 * Start a server process pinned to the server core (when taskset is there), or to `opts.cpus`
 * (a taskset list, `'0,1'`).
 * @param {string} name
 * @param {string} command
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv, cwd?: string, cpus?: string }} [opts]
 * @returns {Server}
 */
export function startServer(name, command, args, opts = {}) {
  const [cmd, argv] = hasTaskset
    ? ['taskset', ['-c', opts.cpus ?? String(SERVER_CORE), command, ...args]]
    : [command, args]
  // taskset execs the command: the child's pid is the server's.
  const proc = spawn(cmd, argv, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
  })
  let tail = ''
  proc.stderr?.on('data', (chunk) => {
    tail = (tail + chunk).slice(-4096)
  })
  const pid = /** @type {number} */ (proc.pid)
  return {
    name,
    proc,
    pid,
    output: () => tail,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = once(proc, 'exit')
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Resolve when something accepts connections on the port (or fail with the server's output).
 * @param {Server} server
 * @param {number} port
 */
export async function waitForPort(server, port, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (server.proc.exitCode !== null) throw new Error(`${server.name} exited:\n${server.output()}`)
    const ok = await new Promise((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' })
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline)
      throw new Error(
        `${server.name} did not listen on ${port} (${describe(server.pid)}):\n${server.output()}`,
      )
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * A process's state and CPU time so far, for an error message (starved, or stuck?).
 * @param {number} pid
 */
function describe(pid) {
  try {
    const f = statFields(pid)
    const wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8')
    return `state ${f[0]}, ${Math.round(cpuMicros([pid]) / 1000)} ms CPU, wchan ${wchan || '-'}`
  } catch {
    return 'gone'
  }
}

/** @param {number} pid */
function statFields(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ')
}

/**
 * The process and its descendants (nginx master → workers).
 * @param {number} pid
 * @returns {number[]}
 */
export function processTree(pid) {
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    const p = /** @type {number} */ (out[i])
    let tasks = []
    try {
      tasks = readdirSync(`/proc/${p}/task`)
    } catch {
      continue
    }
    for (const tid of tasks) {
      try {
        const children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim()
        if (children) for (const c of children.split(' ')) out.push(Number(c))
      } catch {
        // thread ended
      }
    }
  }
  return out
}

/**
 * CPU microseconds used so far by the processes (utime + stime of all their threads).
 * @param {number[]} pids
 */
export function cpuMicros(pids) {
  let ticks = 0
  for (const pid of pids) {
    try {
      const f = statFields(pid)
      // After the ')': state=0 … utime=11, stime=12 (fields 14 and 15 of proc(5)).
      ticks += Number(f[11]) + Number(f[12])
    } catch {
      // exited
    }
  }
  return (ticks * 1e6) / CLK_TCK
}

/**
 * Resident set size in bytes.
 * @param {number} pid
 */
export function rssBytes(pid) {
  try {
    // rss is field 24 of proc(5): index 21 after the ')'.
    return Number(statFields(pid)[21]) * PAGE_SIZE
  } catch {
    return 0
  }
}

/** 1-minute load average (what else was running). */
export function loadAverage() {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
  } catch {
    return Number.NaN
  }
}
