// The script of each thread of TF.js's threaded wasm backend in Node (models/backend.ts startWasm). TF.js
// ships this script only as a string, which it hands to the runtime as a Blob URL (a browser's way): Node's
// worker_threads cannot start a Blob, so this file runs the same string, and, where the main thread sends
// the backend's JavaScript as a Blob too, points the thread at that same script's file on disk instead.
'use strict'
const dir = require('node:path').dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))
const { wasmWorkerContents } = require(`${dir}/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`)
// The string is a CommonJS script: it needs `require` and `__filename`, and puts its handler on the global.
// Its string literals hold raw newlines (its source escaped them once, in a template literal): escape them
// again, as TF.js does before it makes the Blob.
new Function('require', '__filename', wasmWorkerContents.replace(/\n/g, '\\n'))(require, __filename)
const onmessage = globalThis.onmessage
globalThis.onmessage = (e) => {
  if (e.data?.cmd === 'load' && typeof e.data.urlOrBlob !== 'string') e.data.urlOrBlob = `${dir}/wasm-out/tfjs-backend-wasm-threaded-simd.js`
  return onmessage(e)
}
