// `lmp COMMAND [options]`: dispatch to one command module. Every command exports a `command`
// ({ spec, run }) and is listed here; errors become one line on stderr and a non-zero exit.
import { packageVersion } from '../version.ts'
import { helpText, parseArgs, UsageError, type CommandSpec, type ParsedArgs } from './args.ts'
import { LmpError } from '../errors.ts'

export interface Command {
  spec: CommandSpec
  run(args: ParsedArgs): Promise<void>
}

// Lazy imports keep `lmp --help` fast and keep TF.js / onnxruntime out of commands that do not need them.
const commands: Record<string, () => Promise<{ command: Command }>> = {
  demo: () => import('./demo.ts'),
  'train-model': () => import('./train-model.ts'),
  'export-onnx': () => import('./export-onnx.ts'),
  'eval-dset-ppl': () => import('./eval-dset-ppl.ts'),
  'eval-txt-ppl': () => import('./eval-txt-ppl.ts'),
  'gen-txt': () => import('./gen-txt.ts'),
  serve: () => import('./serve.ts'),
  'sample-dset': () => import('./sample-dset.ts'),
  'train-tknzr': () => import('./train-tknzr.ts'),
  'tknz-txt': () => import('./tknz-txt.ts'),
}

const aliases: Record<string, string> = {}
for (const name of Object.keys(commands)) aliases[name.replace(/-/g, '_')] = name

function mainHelp(summaries: [string, string][]): string {
  return [
    'Usage: lmp COMMAND [options]   (lmp COMMAND --help for its options; lmp --version)',
    '',
    'Commands:',
    ...summaries.map(([n, s]) => `  ${n.padEnd(16)} ${s}`),
  ].join('\n')
}

/** The package's version, from package.json (what `lmp --version` prints). */
export function version(): string {
  return packageVersion()
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  if (first === '--version' || first === '-V') {
    console.log(`lmp ${version()}`)
    return 0
  }
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    const summaries: [string, string][] = []
    for (const [name, load] of Object.entries(commands)) {
      summaries.push([name, (await load()).command.spec.summary])
    }
    console.log(mainHelp(summaries))
    return first ? 0 : 2
  }
  const name = commands[first] ? first : aliases[first]
  try {
    if (!name) throw new UsageError(`unknown command '${first}' (see lmp --help)`)
    const { command } = await commands[name]()
    const args = parseArgs(command.spec, rest)
    if (args.help) {
      console.log(helpText(command.spec))
      return 0
    }
    await command.run(args)
    return 0
  } catch (err) {
    return reportError(err)
  }
}

/** One line on stderr; a stack trace only with LMP_DEBUG=1. */
export function reportError(err: unknown): number {
  const e = err as Error
  if (process.env.LMP_DEBUG) console.error(e?.stack ?? e)
  const known = e instanceof UsageError || e instanceof LmpError
  const message = (e?.message ?? String(e)).split('\n')[0]
  process.stderr.write(`lmp: error: ${known ? message : `unexpected: ${message}`}\n`)
  return e instanceof UsageError ? 2 : 1
}
