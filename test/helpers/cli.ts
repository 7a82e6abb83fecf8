// The CLI run in-process (admin/cli.ts runCli) with its output captured: faster than a process
// per command, and the same code path as `tokengate …` after argument parsing.
import { runCli } from '../../src/admin/cli.js'

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

export async function runCliCaptured(argv: string[]): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) })
  return { code, stdout, stderr }
}
