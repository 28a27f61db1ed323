#!/usr/bin/env node
// Entry point of the `lmp` command: run the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api'
register()
const { main } = await import('../src/cli/index.ts')
// A process-wide choice, so here and not in main() (which tests call in-process).
const { endQuietlyOnClosedPipe } = await import('../src/cli/io.ts')
endQuietlyOnClosedPipe()
process.exitCode = await main(process.argv.slice(2))
