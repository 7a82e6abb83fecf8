// Entry point: argv → `serve` | `check-config` | `token …` | `album …` | `inbox …` | `audit`. No
// logic beyond dispatch.
import cluster from 'node:cluster'
import { parseArgs } from 'node:util'
import { runCli } from './admin/cli.js'
import { startApp } from './app.js'
import { loadConfigFile } from './config/load.js'
import { ConfigError, StartupError } from './errors.js'
import { createLogger, type Logger } from './log.js'
import { joinPrimary, startPrimary, workerCount } from './workers.js'

const USAGE = `usage: tokengate <command> [options]

commands:
  serve --config FILE           run the proxy
  check-config --config FILE    validate a config file and exit (0 valid, 2 invalid)
  token …                       create, list, show, revoke, disable, enable tokens (tokengate token --help)
  album …                       add-member, remove-member, add-study, remove-study, studies, import
                                (tokengate album --help)
  inbox …                       add-study, remove-study, studies, import (tokengate inbox --help)
  audit [--since 1h] [--json]   who changed which token or membership, when (tokengate audit --help)

--config defaults to $TOKENGATE_CONFIG, then ./tokengate.yaml`

function configPath(args: string[]): string {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true })
  return values.config ?? process.env.TOKENGATE_CONFIG ?? 'tokengate.yaml'
}

/** What `serve` runs (one app, or the primary of several workers), as the signal handlers see it. */
interface Running {
  reload(): void
  stop(): Promise<void>
}

/**
 * An exception nothing caught (a bug; requests have their own catch in pipeline.ts): log it and
 * exit non-zero, since the process state is unknown. The supervisor (the workers' primary,
 * Docker, systemd) starts a new one.
 */
function exitOnUncaught(log: Logger): void {
  process.on('uncaughtException', (err, origin) => {
    log.fatal({ err, origin }, 'uncaught exception; exiting')
    process.stderr.write(`tokengate: uncaught exception (${origin}): ${err.stack ?? err.message}\n`)
    process.exit(1)
  })
}

async function serve(args: string[]): Promise<void> {
  const path = configPath(args)
  const config = await loadConfigFile(path)
  const log = createLogger(config.log.level)
  exitOnUncaught(log)
  // Signal handlers before anything opens: a SIGTERM during start stops it once started, and a
  // SIGHUP during start is not the default action (exit).
  let running: Running | undefined
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    process.stderr.write(`tokengate: ${signal}, finishing in-flight requests\n`)
    running?.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // The outcome is logged (and counted in tokengate_config_reloads_total) by the app.
  process.on('SIGHUP', () =>
    running ? running.reload() : log.warn('SIGHUP while starting: ignored, send it again once listening'),
  )

  if (cluster.isPrimary && workerCount(config.workers) > 1) {
    running = await startPrimary(path, config, log)
  } else {
    const app = await startApp(config, { log, worker: cluster.isWorker })
    if (cluster.isWorker) joinPrimary(app, path)
    running = { reload: () => void app.reloadFromFile(path), stop: () => app.stop() }
  }
  // A stop asked for while starting: now that everything is open, unwind it.
  if (stopping) await running.stop().then(() => process.exit(0))
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      await serve(rest)
      return -1 // keep running
    case 'check-config': {
      const path = configPath(rest)
      await loadConfigFile(path)
      process.stdout.write(`${path}: ok\n`)
      return 0
    }
    case 'token':
    case 'album':
    case 'inbox':
    case 'audit':
      return runCli(argv)
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`)
      return command === undefined ? 2 : 0
    default:
      process.stderr.write(`tokengate: unknown command "${command}"\n${USAGE}\n`)
      return 2
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof StartupError) {
      // What was opened is closed already (the stack unwound): exit now, whatever else lingers.
      process.stderr.write(`tokengate: cannot start: ${err.message}\n`)
      process.exit(1)
    } else if (err instanceof ConfigError) {
      process.stderr.write(
        `tokengate: invalid configuration:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`,
      )
      process.exitCode = 2
    } else if (
      err instanceof TypeError &&
      (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      process.stderr.write(`tokengate: ${err.message}\n${USAGE}\n`)
      process.exitCode = 2
    } else {
      process.stderr.write(`tokengate: ${(err as Error).stack ?? String(err)}\n`)
      process.exitCode = 1
    }
  },
)
