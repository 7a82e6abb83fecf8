// The CLI run in-process (admin/cli.ts runCli) with its output captured: faster than a process
// per command, and the same code path as `tokengate …` after argument parsing.
import { runCli } from '../../src/admin/cli.js'

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** `stdin`: what the command reads on standard input (`token identify`); empty when not given. */
export async function runCliCaptured(argv: string[], stdin = ''): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(argv, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    stdin: async () => stdin,
  })
  return { code, stdout, stderr }
}
