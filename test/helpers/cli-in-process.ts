// Run `lmp` in the test's own process: the same parsing, commands and error reporting as bin/lmp.js,
// without a process start and TF.js start-up per command (which would put the CLI tests over their time).
import { main } from '../../src/cli/index.ts'
import type { CliResult } from './cli.ts'

/** `lmp ARGS` in this process, its stdout and stderr captured. */
export async function lmpInProcess(args: string[]): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const { write: out } = process.stdout
  const { write: err } = process.stderr
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof out
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof err
  try {
    return { status: await main(args), stdout, stderr }
  } finally {
    process.stdout.write = out
    process.stderr.write = err
  }
}
