// The package's version (package.json), read once. Node only.
import { readFileSync } from 'node:fs'

let known: string | undefined

/** package.json's `version`: what `lmp --version` prints and an exported graph's producer_version. */
export function packageVersion(): string {
  known ??= String(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version)
  return known
}
