// The service worker that lets the page open offline: it keeps the page itself (HTML, scripts, style,
// onnxruntime-web's runtime, the model list) in the Cache API. The model files are not its business:
// the inference worker caches those under their sha256 (worker.ts). Page files are network-first (a
// rebuilt page is picked up at once); the 28 MB runtime is cache-first, in a cache named after the
// build, so a new build (a new onnxruntime-web, say) starts a fresh cache and drops the old one.
declare const BUILD_ID: string

const sw = self as unknown as ServiceWorkerGlobalScope
const CACHE = `lmp-page-${BUILD_ID}`
const RUNTIME = ['ort/ort-wasm-simd-threaded.asyncify.mjs', 'ort/ort-wasm-simd-threaded.asyncify.wasm']
// gpt2-ranks.js (GPT-2's vocabulary, 0.5 MB beside the 28 MB runtime) is kept too, so that a gpt2 model
// opens offline; the worker imports it only for such a model.
const PAGE = ['', 'index.html', 'main.js', 'worker.js', 'gpt2-ranks.js', 'style.css', 'models/index.json']

const scopeUrl = (path: string) => new URL(path, sw.registration.scope).href

sw.addEventListener('install', (e) => {
  e.waitUntil((async () => {
    const cache = await caches.open(CACHE)
    // One by one: a static host without models/index.json must not fail the install.
    await Promise.all([...PAGE, ...RUNTIME].map(async (path) => {
      try {
        const res = await fetch(scopeUrl(path), { cache: 'no-cache' })
        if (res.ok) await cache.put(scopeUrl(path), res)
      } catch { /* offline at install: nothing to keep yet */ }
    }))
    await sw.skipWaiting()
  })())
})

sw.addEventListener('activate', (e) => {
  e.waitUntil((async () => {
    for (const name of await caches.keys()) if (name.startsWith('lmp-page-') && name !== CACHE) await caches.delete(name)
    await sw.clients.claim()
  })())
})

sw.addEventListener('fetch', (e) => {
  const req = e.request
  if (req.method !== 'GET') return
  const url = new URL(req.url)
  if (url.origin !== location.origin || !url.href.startsWith(sw.registration.scope)) return
  const path = url.pathname.slice(new URL(sw.registration.scope).pathname.length)
  if (RUNTIME.includes(path)) e.respondWith(cacheFirst(req, scopeUrl(path)))
  else if (req.mode === 'navigate' && (path === '' || path === 'index.html')) e.respondWith(networkFirst(req, scopeUrl('')))
  else if (PAGE.includes(path) && !url.search) e.respondWith(networkFirst(req, scopeUrl(path)))
})

async function cacheFirst(req: Request, key: string): Promise<Response> {
  const hit = await caches.match(key, { cacheName: CACHE })
  if (hit) return hit
  const res = await fetch(req)
  if (res.ok) await (await caches.open(CACHE)).put(key, res.clone())
  return res
}

async function networkFirst(req: Request, key: string): Promise<Response> {
  try {
    const res = await fetch(req)
    if (res.ok) await (await caches.open(CACHE)).put(key, res.clone())
    return res
  } catch (err) {
    const hit = await caches.match(key, { cacheName: CACHE })
    if (hit) return hit
    throw err
  }
}

export {} // a module: its names stay out of the other files' global scope
