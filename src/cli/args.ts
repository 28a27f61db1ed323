// A small, strict command-line parser shared by every `lmp` command.
// Why not node:util parseArgs alone: we also accept lmp's snake_case spellings (`--max_seq_len`),
// generate `--help` from the same option table, and turn every mistake into a one-line UsageError.

export class UsageError extends Error {}

export type OptionType = 'string' | 'int' | 'float' | 'boolean' | 'string[]'

export interface OptionSpec {
  type: OptionType
  default?: unknown
  help: string
  choices?: readonly string[]
  min?: number
  max?: number
}

export interface CommandSpec {
  name: string
  summary: string
  usage?: string // e.g. '<character|whitespace|BPE>'
  positionals?: { name: string; help: string; choices?: readonly string[]; required?: boolean }[]
  options: Record<string, OptionSpec> // keys in kebab-case
}

export interface ParsedArgs {
  positionals: string[]
  options: Record<string, any> // keys in camelCase
  /** The options the command line gave (camelCase keys), as opposed to defaults. */
  given: Set<string>
  help: boolean
}

const camel = (kebab: string) => kebab.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase())

function convert(flag: string, spec: OptionSpec, raw: string): unknown {
  if (spec.type === 'int') {
    if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${flag} must be an integer, got '${raw}'`)
    const n = Number(raw)
    checkRange(flag, spec, n)
    return n
  }
  if (spec.type === 'float') {
    const n = Number(raw)
    if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got '${raw}'`)
    checkRange(flag, spec, n)
    return n
  }
  if (spec.choices && !spec.choices.includes(raw)) {
    throw new UsageError(`--${flag} must be one of ${spec.choices.join(', ')}; got '${raw}'`)
  }
  return raw
}

function checkRange(flag: string, spec: OptionSpec, n: number) {
  if (spec.min !== undefined && n < spec.min) throw new UsageError(`--${flag} must be >= ${spec.min}, got ${n}`)
  if (spec.max !== undefined && n > spec.max) throw new UsageError(`--${flag} must be <= ${spec.max}, got ${n}`)
}

/** Parse argv (without the command name) against a command's option table. */
export function parseArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options: Record<string, any> = {}
  for (const [flag, o] of Object.entries(spec.options)) {
    options[camel(flag)] = o.type === 'string[]' ? [...((o.default as string[]) ?? [])] : o.default
  }
  const positionals: string[] = []
  const seenLists = new Set<string>()
  const given = new Set<string>()
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--help' || arg === '-h') { help = true; continue }
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break }
    if (!arg.startsWith('--')) { positionals.push(arg); continue }
    let [flag, value] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]
    flag = flag.replace(/_/g, '-')
    let negated = false
    let o = spec.options[flag]
    if (!o && flag.startsWith('no-') && spec.options[flag.slice(3)]?.type === 'boolean') {
      negated = true
      flag = flag.slice(3)
      o = spec.options[flag]
    }
    if (!o) throw new UsageError(`unknown option --${flag} for '${spec.name}' (see lmp ${spec.name} --help)`)
    const key = camel(flag)
    given.add(key)
    if (o.type === 'boolean') {
      if (value === undefined) options[key] = !negated
      else if (value === 'true' || value === 'false') options[key] = (value === 'true') !== negated
      else throw new UsageError(`--${flag} takes no value (or =true/=false), got '${value}'`)
      continue
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${flag} needs a value`)
      value = argv[++i]
    }
    if (o.type === 'string[]') {
      if (!seenLists.has(key)) { options[key] = []; seenLists.add(key) }
      options[key].push(convert(flag, o, value))
    } else {
      options[key] = convert(flag, o, value)
    }
  }
  if (!help) {
    const specs = spec.positionals ?? []
    if (positionals.length > specs.length) {
      throw new UsageError(`unexpected argument '${positionals[specs.length]}' for '${spec.name}'`)
    }
    specs.forEach((p, i) => {
      const v = positionals[i]
      if (v === undefined) {
        if (p.required !== false) throw new UsageError(`'${spec.name}' needs <${p.name}> (see lmp ${spec.name} --help)`)
      } else if (p.choices && !p.choices.includes(v)) {
        throw new UsageError(`<${p.name}> must be one of ${p.choices.join(', ')}; got '${v}'`)
      }
    })
  }
  return { positionals, options, given, help }
}

/** The text printed by `lmp COMMAND --help`. */
export function helpText(spec: CommandSpec): string {
  const pos = (spec.positionals ?? []).map((p) => (p.required === false ? `[${p.name}]` : `<${p.name}>`)).join(' ')
  const lines = [`Usage: lmp ${spec.name}${pos ? ' ' + pos : ''} [options]`, '', spec.summary, '']
  for (const p of spec.positionals ?? []) {
    lines.push(`  ${p.name.padEnd(26)} ${p.help}${p.choices ? ` (${p.choices.join(' | ')})` : ''}`)
  }
  if (spec.positionals?.length) lines.push('')
  lines.push('Options:')
  for (const [flag, o] of Object.entries(spec.options)) {
    const meta = o.type === 'boolean' ? '' : o.choices ? ` <${o.choices.join('|')}>` : ` <${o.type.replace('[]', '')}>`
    const def = o.default === undefined || o.type === 'boolean' ? '' : ` (default: ${JSON.stringify(o.default)})`
    lines.push(`  --${(flag + meta).padEnd(24)} ${o.help}${def}`)
  }
  lines.push(`  --${'help'.padEnd(24)} show this help`)
  lines.push('', 'lmp\'s snake_case spellings are accepted too (--max_seq_len = --max-seq-len).')
  return lines.join('\n')
}
