// `npm run bench [-- NAME ...]`: run each bench/*.bench.ts (or the named ones) in its own process.
// Every benchmark prints JSON lines (medians); this runner passes them through.
import { readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const wanted = process.argv.slice(2)
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort()
if (files.length === 0) {
  console.error(`no benchmark matches ${wanted.join(', ')}`)
  process.exit(2)
}
let failed = 0
for (const f of files) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${f}`], { stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) {
    failed++
    console.error(`bench ${f} failed (exit ${r.status})`)
  }
}
process.exit(failed ? 1 : 0)
