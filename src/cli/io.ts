// Standard streams for `lmp`: `--txt -` reads standard input, and a reader that stops reading early
// (`lmp gen-txt ... | head -c 10`) ends the command quietly.
import { readFileSync } from 'node:fs'
import { LmpError } from '../errors.ts'

/**
 * The text of a `--txt` option: '-' means all of standard input, read as UTF-8 and kept as it is (a final
 * newline included: `printf` or `echo -n` give a text without one). Throws an LmpError when standard input
 * cannot be read or is not UTF-8.
 */
export function readTxtOption(txt: string): string {
  if (txt !== '-') return txt
  let bytes: Buffer
  try {
    bytes = readFileSync(0)
  } catch (err) {
    throw new LmpError(`--txt -: cannot read standard input (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    throw new LmpError('--txt -: standard input is not valid UTF-8')
  }
}

/**
 * When the reader of stdout or stderr goes away (EPIPE), the output is not wanted any more: exit at once
 * with status 0 and no message, as ripgrep does (a shell's `set -o pipefail` then sees success, and no work
 * is done for nobody). Any other error on these streams is one line on stderr, if it can still be written,
 * and status 1.
 */
export function endQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0)
      try { process.stderr.write(`lmp: error: cannot write output: ${err.message.split('\n')[0]}\n`) } catch { /* stderr is gone too */ }
      process.exit(1)
    })
  }
}
