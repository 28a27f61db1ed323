#!/usr/bin/env node
// Entry point of the `lmp` command: run the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api'
register()
const { main } = await import('../src/cli/index.ts')
process.exitCode = await main(process.argv.slice(2))
