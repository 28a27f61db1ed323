// Run the real `lmp` command in a child process.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const bin = fileURLToPath(new URL('../../bin/lmp.js', import.meta.url))

export interface CliResult { status: number | null; stdout: string; stderr: string }

export function lmp(args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env, LMP_DEBUG: '' },
    encoding: 'utf8',
    timeout: timeoutMs,
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** A failure as users must see it: non-zero exit, one line on stderr, no stack trace. */
export function isOneLineError(r: CliResult): boolean {
  const lines = r.stderr.trim().split('\n')
  return r.status !== 0 && lines.length === 1 && lines[0].startsWith('lmp: error: ') && !/\n\s+at /.test(r.stderr)
}
