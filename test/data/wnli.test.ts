// WNLI (GLUE), lmp's fourth dataset, on a small copy made here: samples (sentence1 column, then sentence2,
// lmp's spacing), the three versions, a local --data-path (zip, folder, .tsv), and the download cache:
// checked by MD5, downloaded once (lmp's cache check missed its own file name and downloaded every time).
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DATASETS, loadDataset } from '../../src/data/index.ts'
import { loadWnli, WNLI, wnliSamples, wnliSpacing } from '../../src/data/corpora.ts'
import { LmpError } from '../../src/errors.ts'
import { makeZip } from './helpers.ts'

const tsv = (rows: [string, string, string][], label = true) =>
  ['index\tsentence1\tsentence2' + (label ? '\tlabel' : ''), ...rows.map((r, i) => [i, ...r].slice(0, label ? 4 : 3).join('\t'))].join('\n') + '\n'
const TRAIN = tsv([
  ['I stuck a pin through a carrot. When I pulled the pin out, it had a hole.', 'The carrot had a hole.', '1'],
  ["John couldn't see the stage with Billy in front of him because he is so short.", 'John is so short.', '1'],
  ['Mark was   timid.', '"Sam said, no."', '0'],
])
const DEV = tsv([['The drain is clogged with hair. It has to be cleaned.', 'The hair has to be cleaned.', '0']])
const TEST = tsv([['Steve follows Fred\'s example in everything. He influences him hugely.', 'Steve influences him hugely.', 'x']], false)
const zip = makeZip({ 'WNLI/train.tsv': Buffer.from(TRAIN), 'WNLI/dev.tsv': Buffer.from(DEV), 'WNLI/test.tsv': Buffer.from(TEST) })
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex')

t.test("lmp's spacing (its docstring's examples) and samples: every sentence1, then every sentence2", async (t) => {
  t.equal(wnliSpacing('Mark was timid.'), 'Mark was timid .')
  t.equal(wnliSpacing("It's fine; ok: yes?"), "It 's fine ; ok : yes ?")
  t.same(wnliSamples(TRAIN), [
    'I stuck a pin through a carrot . When I pulled the pin out , it had a hole .',
    "John couldn 't see the stage with Billy in front of him because he is so short .",
    'Mark was timid .',
    'The carrot had a hole .',
    'John is so short .',
    '" Sam said , no ."',
  ])
  t.equal(wnliSamples(TEST).length, 2, 'the test split has no label column')
  t.throws(() => wnliSamples('index\tsentence\n0\tx\n'), new LmpError("WNLI file has no column 'sentence1' (columns: index, sentence)"))
})

t.test('the dataset WNLI: versions train, dev, test; a local copy as zip, folder or .tsv', async (t) => {
  t.same(DATASETS.WNLI, { versions: ['train', 'dev', 'test'], defaultVersion: 'train' })
  const dir = t.testdir({ 'WNLI.zip': zip, tsvs: { 'dev.tsv': DEV }, 'dev.tsv': DEV })
  t.same(await loadDataset('WNLI', undefined, { dataPath: join(dir, 'WNLI.zip') }), wnliSamples(TRAIN), 'train by default')
  t.same(await loadDataset('WNLI', 'dev', { dataPath: dir }), wnliSamples(DEV), 'a folder holding WNLI.zip')
  t.same(await loadDataset('WNLI', 'dev', { dataPath: join(dir, 'tsvs') }), wnliSamples(DEV), 'a folder holding dev.tsv')
  t.same(await loadDataset('WNLI', 'test', { dataPath: join(dir, 'WNLI.zip') }), wnliSamples(TEST))
  await t.rejects(loadDataset('WNLI', 'valid', { dataPath: dir }), /unknown version 'valid' of dataset 'WNLI': must be one of train, dev, test/)
  await t.rejects(loadDataset('WNLI', 'dev', { dataPath: join(dir, 'none') }), /does not exist/)
})

async function serve(t: Test, body: Buffer) {
  const hits: string[] = []
  const server = createServer((req, res) => {
    hits.push(req.url ?? '')
    res.writeHead(200, { 'content-length': body.length }).end(body)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, hits }
}

t.test('download: into the cache once, checked by MD5', async (t) => {
  const { base, hits } = await serve(t, zip)
  const cache = t.testdir({})
  const copy = { ...WNLI, md5: md5(zip) } // this test's zip stands in for GLUE's
  t.same(await loadWnli('dev', { dataDir: cache, mirror: base }, copy), wnliSamples(DEV))
  t.same(hits, ['/wnli/WNLI.zip'], 'fetched from the mirror, laid out like the cache')
  t.same(readdirSync(join(cache, 'wnli')), ['WNLI.zip'], 'cached as the zip, no temp file left')
  t.same(await loadWnli('train', { dataDir: cache, mirror: base }, copy), wnliSamples(TRAIN))
  t.same(await loadWnli('test', { dataDir: cache, mirror: base }, copy), wnliSamples(TEST))
  t.equal(hits.length, 1, 'every version read from the one cached download')
  writeFileSync(join(cache, 'wnli', 'WNLI.zip'), 'tampered')
  t.same(await loadWnli('dev', { dataDir: cache, mirror: base }, copy), wnliSamples(DEV))
  t.equal(hits.length, 2, 'a copy whose MD5 does not match is downloaded again')

  const other = t.testdir({})
  await t.rejects(loadDataset('WNLI', 'dev', { dataDir: other, mirror: base }), new RegExp(`has md5 ${md5(zip)}, expected ${WNLI.md5}`), "a file that is not GLUE's is refused")
  t.notOk(existsSync(join(other, 'wnli', 'WNLI.zip')), 'and not cached')
})
