// Builds the page into web/dist/ (`npm run build:web`; `npm test` runs it first): esbuild bundles
// main.ts and worker.ts (with the src/ tokenizer, sampling, generation and scoring code and
// onnxruntime-web) and the service worker sw.ts (which keeps the page for offline use), and copies the
// page, its stylesheet and onnxruntime-web's WASM runtime files, so web/dist/ works from any static
// host with a model folder beside it (models/NAME/ plus models/index.json, or ?model=PATH).
import { copyFile, link, mkdir, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const webDir = path.dirname(fileURLToPath(import.meta.url))
const dist = path.join(webDir, 'dist')
const ortDist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'))
const gpt2Ranks = path.join(path.dirname(createRequire(import.meta.url).resolve('gpt-tokenizer/package.json')), 'esm', 'bpeRanks', 'r50k_base.js')
// onnxruntime-web's WebGPU build (onnxruntime-web/webgpu, imported by worker.ts) runs WASM and WebGPU
// through these two files.
const ortFiles = ['ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm']

/** A hard link when it can (the .wasm is 28 MB), else a copy. */
async function place(from, to) {
  try {
    await link(from, to)
  } catch {
    await copyFile(from, to)
  }
}

const started = Date.now()
await rm(dist, { recursive: true, force: true })
await mkdir(path.join(dist, 'ort'), { recursive: true })
await esbuild.build({
  // gpt2-ranks.js: GPT-2's vocabulary (gpt-tokenizer's r50k_base, ~0.6 MB), a file of its own that the
  // worker imports only when a gpt2-tokenizer model is opened, so other models never download it.
  entryPoints: { main: path.join(webDir, 'main.ts'), worker: path.join(webDir, 'worker.ts'), 'gpt2-ranks': gpt2Ranks },
  outdir: dist,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  // Keep onnxruntime-web's WASM glue as separate files loaded from env.wasm.wasmPaths (./ort/).
  conditions: ['onnxruntime-web-use-extern-wasm'],
  logLevel: 'warning',
})
// The service worker: a classic script (module service workers are not everywhere yet), named after
// this build so that its caches start fresh with every build.
await esbuild.build({
  entryPoints: { sw: path.join(webDir, 'sw.ts') },
  outdir: dist,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  define: { BUILD_ID: JSON.stringify(started.toString(36)) },
  logLevel: 'warning',
})
await copyFile(path.join(webDir, 'index.html'), path.join(dist, 'index.html'))
await copyFile(path.join(webDir, 'style.css'), path.join(dist, 'style.css'))
for (const f of ortFiles) await place(path.join(ortDist, f), path.join(dist, 'ort', f))
console.log(`build:web: ${path.relative(process.cwd(), dist) || dist} in ${Date.now() - started} ms`)
