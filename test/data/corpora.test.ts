import t from 'tap'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { makeZip } from './helpers.ts'
import { DATASETS, loadDataset } from '../../src/data/index.ts'
import { blocks, chinesePoems, tinyShakespeareSplit, wikiArticles, textSamples } from '../../src/data/corpora.ts'
import { parseCsv } from '../../src/data/csv.ts'
import { readZipMember } from '../../src/data/zip.ts'
import { streamTextSamples } from '../../src/data/stream.ts'
import { LmpError } from '../../src/errors.ts'

const SHARED = '../shared/data' // relative to the repo root, where tap runs

t.test('registry: lmp names and versions', async (t) => {
  t.same(Object.keys(DATASETS), ['demo', 'tiny-shakespeare', 'wiki-text-2', 'chinese-poem', 'WNLI', 'text'])
  t.equal(DATASETS['chinese-poem'].versions.length, 27)
  t.equal(DATASETS['chinese-poem'].defaultVersion, '唐')
  t.equal(DATASETS['wiki-text-2'].defaultVersion, 'train')
  await t.rejects(loadDataset('wiki-text-2', 'dev'), /must be one of train, valid, test/)
})

t.test('tiny-shakespeare: nanoGPT split sizes, speeches as samples', async (t) => {
  const text = readFileSync(join(SHARED, 'tinyshakespeare/input.txt'), 'utf8')
  t.equal(text.length, 1115394)
  t.equal(tinyShakespeareSplit(text, 'train').length, 1003854)
  t.equal(tinyShakespeareSplit(text, 'valid').length, 111540)
  t.equal(tinyShakespeareSplit(text, 'test'), tinyShakespeareSplit(text, 'valid'), 'test = valid (documented)')
  const train = await loadDataset('tiny-shakespeare', 'train', { dataPath: SHARED })
  const valid = await loadDataset('tiny-shakespeare', 'valid', { dataPath: SHARED })
  t.equal(train[0], 'First Citizen:\nBefore we proceed any further, hear me speak.')
  t.match(valid.at(-1), /Whiles thou art waking\.$/)
  // blocks only drop the blank-line separators
  const nonWs = (s: string) => s.replace(/\s/g, '').length
  t.equal(train.reduce((n, s) => n + nonWs(s), 0), nonWs(tinyShakespeareSplit(text, 'train')))
  t.same(await loadDataset('tiny-shakespeare', 'train', { dataPath: join(SHARED, 'tinyshakespeare/input.txt') }), train, '--data-path FILE')
  t.same(blocks('a\nb\n\n\nc\n \nd\n'), ['a\nb', 'c', 'd'])
})

t.test("wiki-text-2: lmp's article rule; valid and test have 60 articles", async (t) => {
  const valid = await loadDataset('wiki-text-2', 'valid', { dataPath: SHARED })
  const test = await loadDataset('wiki-text-2', 'test', { dataPath: SHARED })
  t.equal(valid.length, 60)
  t.equal(test.length, 60)
  t.match(test[0], /^= Robert <unk> = Robert <unk> is an English film , television and theatre actor/)
  t.match(valid[0], /^= Homarus gammarus = Homarus gammarus , known as/)
  t.notOk(test.at(-1)!.endsWith(' '), "no trailing space on the last article (lmp's defect)")
  t.same(wikiArticles(' \n = A = \n \n x \n \n = = B = = \n \n y \n \n = C = \n \n z \n'), ['= A = x = = B = = y', '= C = z'])
  t.same(wikiArticles(' \n = A = \n x \n = C = \n z'), ['= A = x = C = z'], 'a title needs empty neighbours')
  await t.rejects(loadDataset('wiki-text-2', 'train', { dataPath: SHARED }), /holds none of wikitext-2\/train.txt/)
})

t.test("chinese-poem: column 內容, normalized, poems of >= 24 characters, from the zip", async (t) => {
  const poemA = '風淅淅。夜雨連雲黑。滴滴painful,\n"quoted"。天下一家，春風十里，夜雨十年燈。'
  const short = '床前明月光，疑是地上霜。'
  const csv = `題目,朝代,作者,內容\n夜雨,唐,某,"${poemA.replace(/"/g, '""')}"\n靜夜思,唐,李白,${short}\n空,唐,某,\n長,唐,某,${'一'.repeat(24)}\n`
  t.same(parseCsv('a,"b,""c""\nd",e\r\n1,,3'), [['a', 'b,"c"\nd', 'e'], ['1', '', '3']])
  const poems = chinesePoems(csv)
  t.same(poems, [poemA.replace('\n', ' ').replace(/，/g, ','), '一'.repeat(24)], 'short and empty poems dropped; NFKC, whitespace normalized')
  const dir = t.testdir()
  const zip = makeZip({ '唐.csv': Buffer.from(csv) })
  t.equal(readZipMember(zip, '唐.csv').toString(), csv)
  t.throws(() => readZipMember(zip, '宋.csv'), /has no member/)
  mkdirSync(join(dir, 'chinese-poem'))
  writeFileSync(join(dir, 'chinese-poem', '唐.csv.zip'), zip)
  t.same(await loadDataset('chinese-poem', undefined, { dataPath: dir }), poems, 'default version 唐, from the zip')
  writeFileSync(join(dir, '宋.csv'), csv)
  t.same(await loadDataset('chinese-poem', '宋', { dataPath: dir }), poems, 'a plain CSV works too')
  t.throws(() => chinesePoems('a,b\n1,2\n'), /no column '內容'/)
  try { chinesePoems('a\n') } catch (e) { t.ok(e instanceof LmpError) }
})

t.test('local text: file or folder, per line or per block; streamed', async (t) => {
  const dir = t.testdir({
    'a.txt': 'Hello  world\n\n second\tline \nthird\n',
    'b.txt': 'more\n',
    split: { 'train.txt': 'tr1\ntr2\n', 'valid.txt': 'va\n' },
  })
  t.same(await loadDataset('text', undefined, { dataPath: join(dir, 'a.txt') }), ['Hello world', 'second line', 'third'])
  t.same(await loadDataset('text', 'train', { dataPath: join(dir, 'a.txt'), sampleBy: 'block' }), ['Hello world', 'second line third'])
  t.same(await loadDataset('text', 'train', { dataPath: dir }), ['Hello world', 'second line', 'third', 'more'], 'every *.txt, by name')
  t.same(await loadDataset('text', 'valid', { dataPath: join(dir, 'split') }), ['va'])
  await t.rejects(loadDataset('text', 'test', { dataPath: join(dir, 'split') }), /has no test.txt/)
  await t.rejects(loadDataset('text'), /needs --data-path/)
  await t.rejects(loadDataset('text', 'train', { dataPath: join(dir, 'nope') }), /does not exist/)
  t.same(textSamples('x\n\ny\n'), ['x', 'y'])
  // the streamed reader agrees with the in-memory one, across chunk boundaries and multi-byte characters
  const big = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? '' : `línea ${i} 😀 ${'é'.repeat(i % 13)}`)).join('\n')
  writeFileSync(join(dir, 'big.txt'), big)
  for (const sampleBy of ['line', 'block'] as const) {
    t.same([...streamTextSamples(join(dir, 'big.txt'), sampleBy, 7)], textSamples(big, sampleBy), `stream ${sampleBy}`)
  }
})
