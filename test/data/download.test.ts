import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createHash } from 'node:crypto'
import { loadDataset } from '../../src/data/index.ts'
import { downloadFile } from '../../src/data/download.ts'
import { LmpError } from '../../src/errors.ts'
import { closedPort, makeZip } from './helpers.ts'

const SHARED = resolve('../shared/data')
const SHAKESPEARE = readFileSync(join(SHARED, 'tinyshakespeare/input.txt'))
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** A local HTTP server: /ok/<path> serves ../shared/data, /half sends half then stalls, /cut closes mid-body. */
async function serve(t: Test): Promise<{ base: string; hits: string[] }> {
  const hits: string[] = []
  const server: Server = createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '')
    hits.push(url)
    if (url.startsWith('/ok/')) {
      const p = join(SHARED, url.slice(4))
      if (!existsSync(p)) { res.writeHead(404).end(); return }
      const body = readFileSync(p)
      res.writeHead(200, { 'content-length': body.length }).end(body)
    } else if (url.startsWith('/wrong/')) {
      const body = Buffer.from(SHAKESPEARE)
      body[1000] ^= 1
      res.writeHead(200, { 'content-length': body.length }).end(body)
    } else if (url.startsWith('/half/')) {
      res.writeHead(200, { 'content-length': SHAKESPEARE.length })
      res.write(SHAKESPEARE.subarray(0, SHAKESPEARE.length >> 1)) // and never finish
    } else if (url.startsWith('/cut/')) {
      res.writeHead(200, { 'content-length': SHAKESPEARE.length })
      res.write(SHAKESPEARE.subarray(0, 4096), () => res.socket?.destroy())
    } else if (url.startsWith('/zip/')) {
      const p = join(zipDir, url.slice(5))
      res.writeHead(200).end(readFileSync(p))
    } else res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const port = (server.address() as { port: number }).port
  return { base: `http://127.0.0.1:${port}`, hits }
}
let zipDir = ''

t.test('download into the cache: checksum, atomic, reused', async (t) => {
  const { base, hits } = await serve(t)
  const cache = t.testdir()
  const valid = await loadDataset('tiny-shakespeare', 'valid', { dataDir: cache, mirror: `${base}/ok` })
  const file = join(cache, 'tinyshakespeare/input.txt')
  t.equal(sha(readFileSync(file)), '86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed')
  t.same(readdirSync(join(cache, 'tinyshakespeare')), ['input.txt'], 'no temp file left')
  t.same(hits, ['/ok/tinyshakespeare/input.txt'])
  t.same(await loadDataset('tiny-shakespeare', 'valid', { dataDir: cache, mirror: `${base}/ok` }), valid)
  t.equal(hits.length, 1, 'a valid cached copy is not downloaded again')
  writeFileSync(file, 'tampered')
  await loadDataset('tiny-shakespeare', 'valid', { dataDir: cache, mirror: `${base}/ok` })
  t.equal(hits.length, 2, 'a cached copy that fails its checksum is downloaded again')
  t.equal(statSync(file).size, 1115394)
  // LMP_DATA_DIR names the cache; the shared copy is a valid cache, so no download happens at all
  process.env.LMP_DATA_DIR = '../shared/data'
  t.teardown(() => { delete process.env.LMP_DATA_DIR })
  const w = await loadDataset('wiki-text-2', 'test', { mirror: `http://127.0.0.1:${await closedPort()}` })
  t.equal(w.length, 60)
  const wv = await loadDataset('wiki-text-2', 'valid', { dataDir: cache, mirror: `${base}/ok` })
  t.equal(wv.length, 60, 'wiki-text-2 downloads by version')
  t.ok(existsSync(join(cache, 'wikitext-2/valid.txt')))
})

t.test('a wrong checksum or a cut-off download leaves no file behind', async (t) => {
  const { base } = await serve(t)
  const cache = t.testdir()
  const dest = join(cache, 'x', 'input.txt')
  const file = { url: `${base}/wrong/x`, sha256: sha(SHAKESPEARE), size: SHAKESPEARE.length }
  await t.rejects(downloadFile(file, dest, 'hint'), /has sha256 [0-9a-f]{64}, expected 86c4e6/)
  t.same(readdirSync(join(cache, 'x')), [])
  await t.rejects(downloadFile({ ...file, url: `${base}/cut/x` }, dest, 'use --data-path'), /cut off|bytes, expected/)
  t.same(readdirSync(join(cache, 'x')), [])
  await t.rejects(downloadFile({ ...file, url: `${base}/nothing` }, dest, 'use --data-path'), /HTTP 404; use --data-path/)
})

t.test('a download killed half-way leaves no file that a later run would trust', async (t) => {
  const { base, hits } = await serve(t)
  const cache = t.testdir()
  const script = join(cache, 'dl.mts')
  writeFileSync(script, `import { loadDataset } from ${JSON.stringify(resolve('src/data/index.ts'))}
await loadDataset('tiny-shakespeare', 'train', { dataDir: ${JSON.stringify(cache)}, mirror: ${JSON.stringify(base + '/half')} })\n`)
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: 'ignore' })
  const dir = join(cache, 'tinyshakespeare')
  // wait until half the file has been written to the temp file, then kill -9
  for (let i = 0; i < 400; i++) {
    const partial = existsSync(dir) ? readdirSync(dir).filter((f) => f.includes('.partial-')) : []
    if (partial.length && statSync(join(dir, partial[0])).size >= SHAKESPEARE.length >> 1) break
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  const left = readdirSync(dir)
  t.equal(left.length, 1)
  t.match(left[0], /^input\.txt\.partial-/, 'only a temp file, which is never read back')
  t.notOk(existsSync(join(dir, 'input.txt')))
  const train = await loadDataset('tiny-shakespeare', 'train', { dataDir: cache, mirror: `${base}/ok` })
  t.equal(train[0], 'First Citizen:\nBefore we proceed any further, hear me speak.')
  t.same(readdirSync(dir), ['input.txt'], 'the next run downloads afresh and removes the leftover')
  t.equal(hits.at(-1), '/ok/tinyshakespeare/input.txt')
})

t.test('an unreachable host gives a one-line error naming --data-path', async (t) => {
  const cache = t.testdir()
  const port = await closedPort()
  try {
    await loadDataset('tiny-shakespeare', 'train', { dataDir: cache, mirror: `http://127.0.0.1:${port}` })
    t.fail('should throw')
  } catch (err) {
    t.ok(err instanceof LmpError)
    const msg = (err as Error).message
    t.match(msg, /cannot download http:\/\/127\.0\.0\.1:\d+\/tinyshakespeare\/input\.txt \(ECONNREFUSED\); no network\? .*--data-path FILE/)
    t.notOk(msg.includes('\n'), 'one line')
  }
  t.notOk(existsSync(join(cache, 'tinyshakespeare/input.txt')))
})

t.test('chinese-poem downloads its zip by dynasty name', async (t) => {
  const root = t.testdir()
  zipDir = join(root, 'served')
  const { base } = await serve(t)
  mkdirSync(join(zipDir, 'chinese-poem'), { recursive: true })
  const poem = '風淅淅。夜雨連雲黑。滴滴空階冷。明朝又是一年春，花開花落。'
  writeFileSync(join(zipDir, 'chinese-poem', '宋.csv.zip'), makeZip({ '宋.csv': Buffer.from(`內容\n${poem}\n`) }))
  const cache = join(root, 'cache')
  t.same(await loadDataset('chinese-poem', '宋', { dataDir: cache, mirror: `${base}/zip` }), [poem.replace('，', ',')])
  t.ok(existsSync(join(cache, 'chinese-poem', '宋.csv.zip')))
})
