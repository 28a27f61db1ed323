// Builds models/kernels.wat into the two binaries models/wasm-kernels.ts loads: kernels.wasm imports a
// shared memory (TF.js's threaded wasm build), kernels-unshared.wasm an unshared one (its one-thread
// build). `npm run build:kernels`; test/models/wasm-kernels.test.ts checks the committed files match.
import wabt from 'wabt'
import { readFileSync, writeFileSync } from 'node:fs'

const FEATURES = { simd: true, threads: true, bulk_memory: true }
const SHARED_IMPORT = '(memory 1 65536 shared)'

/** The .wat source → { 'kernels.wasm': bytes, 'kernels-unshared.wasm': bytes }. */
export async function buildKernels(source: string): Promise<Record<string, Buffer>> {
  if (!source.includes(SHARED_IMPORT)) throw new Error(`kernels.wat must import ${SHARED_IMPORT}`)
  const { parseWat } = await wabt()
  const build = (text: string) => {
    const module = parseWat('kernels.wat', text, FEATURES)
    ;(module.validate as (features: object) => void)(FEATURES) // the typings omit the features it takes
    const { buffer } = module.toBinary({})
    module.destroy()
    return Buffer.from(buffer)
  }
  return {
    'kernels.wasm': build(source),
    'kernels-unshared.wasm': build(source.replace(SHARED_IMPORT, '(memory 1 65536)')),
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = new URL('.', import.meta.url)
  try {
    const built = await buildKernels(readFileSync(new URL('kernels.wat', dir), 'utf8'))
    for (const [name, bytes] of Object.entries(built)) {
      writeFileSync(new URL(name, dir), bytes)
      console.log(`models/${name}: ${bytes.length} bytes`)
    }
  } catch (err) {
    // wabt's message is the diagnostic (file:line:column and the line); its stack says nothing more.
    console.error(`build:kernels: ${(err as Error).message.trim()}`)
    process.exit(1)
  }
}
