// The downloadable corpora and local text files (node only).
//
// Where files come from, in order:
//   1. opts.dataPath (--data-path): a local file, or a folder holding the corpus files (either directly or
//      in the cache layout below). Never downloaded, never checksummed: it is the user's own copy.
//   2. the cache folder, LMP_DATA_DIR (default ./data), laid out as <dir>/tinyshakespeare/input.txt,
//      <dir>/wikitext-2/{train,valid,test}.txt, <dir>/chinese-poem/{ver}.csv.zip: a file there is used when
//      its size and sha256 match (where known), otherwise it is downloaded again.
//   3. a download from the public source (or from LMP_DATA_MIRROR, a base URL laid out like the cache).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { LmpError } from '../errors.ts'
import { normText } from '../tokenizer/norm.ts'
import { downloadFile, type RemoteFile } from './download.ts'
import { parseCsv } from './csv.ts'
import { readZipMember } from './zip.ts'

export interface CorpusOptions {
  dataPath?: string
  /** the cache folder; default LMP_DATA_DIR or ./data */
  dataDir?: string
  /** a base URL to download from instead of the public sources; default LMP_DATA_MIRROR */
  mirror?: string
  /** for `text`: one sample per line (default) or per blank-line-separated block */
  sampleBy?: 'line' | 'block'
}

/** lmp's dataset normalization (BaseDset.norm): NFKC, whitespace runs to one space, strip. */
export const normSample = (txt: string) => normText(txt, false)

export const dataDir = (opts: CorpusOptions) => resolve(opts.dataDir ?? process.env.LMP_DATA_DIR ?? 'data')

interface Source extends RemoteFile {
  /** path under the cache folder (and under a mirror) */
  rel: string
}

const GITHUB_RAW = 'https://raw.githubusercontent.com'

export const TINY_SHAKESPEARE: Source = {
  rel: 'tinyshakespeare/input.txt',
  url: `${GITHUB_RAW}/karpathy/char-rnn/master/data/tinyshakespeare/input.txt`,
  sha256: '86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed',
  size: 1115394,
}

// lmp's S3 URL is dead; pytorch/examples keeps the same text (wiki.*.tokens) as {train,valid,test}.txt.
const WIKITEXT2_SHA: Record<string, [string | null, number | undefined]> = {
  train: [null, undefined], // no copy offline to take the checksum from
  valid: ['f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8', 1121681],
  test: ['d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0', 1256449],
}
export const wikiText2Source = (ver: string): Source => ({
  rel: `wikitext-2/${ver}.txt`,
  url: `${GITHUB_RAW}/pytorch/examples/main/word_language_model/data/wikitext-2/${ver}.txt`,
  sha256: WIKITEXT2_SHA[ver][0],
  size: WIKITEXT2_SHA[ver][1],
})

export const chinesePoemSource = (ver: string): Source => ({
  rel: `chinese-poem/${ver}.csv.zip`,
  url: `https://github.com/ProFatXuanAll/demo-dataset/raw/main/ch-poem/${encodeURIComponent(ver)}.csv.zip`,
  sha256: null,
})

export const CHINESE_POEM_VERSIONS = [
  '元', '元末明初', '先秦', '南北朝', '唐', '唐末宋初', '宋', '宋末元初', '宋末金初', '明',
  '明末清初', '民國末當代初', '清', '清末民國初', '清末近現代初', '漢', '當代', '秦', '近現代',
  '近現代末當代初', '遼', '金', '金末元初', '隋', '隋末唐初', '魏晉', '魏晉末南北朝初',
]

const isFile = (p: string) => existsSync(p) && statSync(p).isFile()
const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory()

/** The local path of a corpus file: from --data-path, else the cache (downloading into it if needed). */
async function corpusFile(name: string, src: Source, localNames: string[], opts: CorpusOptions): Promise<string> {
  if (opts.dataPath !== undefined) {
    const p = resolve(opts.dataPath)
    if (isFile(p)) return p
    if (!isDir(p)) throw new LmpError(`--data-path ${opts.dataPath} does not exist`)
    for (const cand of [src.rel, ...localNames]) if (isFile(join(p, cand))) return join(p, cand)
    throw new LmpError(`--data-path ${opts.dataPath} holds none of ${[src.rel, ...localNames].join(', ')} for ${name}`)
  }
  const dest = join(dataDir(opts), src.rel)
  const mirror = opts.mirror ?? process.env.LMP_DATA_MIRROR
  const url = mirror ? `${mirror.replace(/\/$/, '')}/${src.rel.split('/').map(encodeURIComponent).join('/')}` : src.url
  const hint = `no network? fetch ${src.url} on another machine and pass --data-path FILE (or put it at ${dest})`
  await downloadFile({ ...src, url }, dest, hint)
  return dest
}

// ---------------------------------------------------------------------------------------------------------
// Tiny Shakespeare: nanoGPT's split, the first 90% of characters is train and the rest valid. There is no
// test split in the common protocol: test = valid, so published numbers stay comparable.
export const TINY_SHAKESPEARE_VERSIONS = ['train', 'valid', 'test']

export function tinyShakespeareSplit(text: string, ver: string): string {
  const cut = Math.floor(text.length * 0.9)
  return ver === 'train' ? text.slice(0, cut) : text.slice(cut)
}

/** One sample per blank-line-separated block (a speech), kept raw: its newlines are text too. */
export function blocks(text: string): string[] {
  return text.split(/\n[ \t\r]*\n/).map((b) => b.replace(/^\n+|\n+$/g, '')).filter((b) => b.trim() !== '')
}

export async function loadTinyShakespeare(ver: string, opts: CorpusOptions): Promise<string[]> {
  return blocks(await loadTinyShakespeareRaw(ver, opts))
}

/** The split as nanoGPT's character task reads it: raw characters, newlines kept, nothing normalized. */
export async function loadTinyShakespeareRaw(ver: string, opts: CorpusOptions): Promise<string> {
  const path = await corpusFile('tiny-shakespeare', TINY_SHAKESPEARE, ['input.txt', 'tiny-shakespeare/input.txt'], opts)
  return tinyShakespeareSplit(readFileSync(path, 'utf8'), ver)
}

// ---------------------------------------------------------------------------------------------------------
// WikiText-2, one sample per article (lmp's rule): a normalized line `= Title =` (not `= = ...`) whose raw
// neighbours are both empty starts a new article; an article is its normalized non-empty lines joined by ' '.
// lmp kept a trailing space on the last article; that defect is not copied.
export function wikiArticles(text: string): string[] {
  const lines = text.split('\n')
  const normed = lines.map(normSample)
  const articles: string[] = []
  let cur: string[] = []
  normed.forEach((line, i) => {
    if (line === '') return
    const isTitle = line.startsWith('=') && !line.startsWith('= =') && line.endsWith('=')
    if (cur.length > 0 && isTitle && (normed[i - 1] ?? '') === '' && (normed[i + 1] ?? '') === '') {
      articles.push(cur.join(' '))
      cur = []
    }
    cur.push(line)
  })
  if (cur.length > 0) articles.push(cur.join(' '))
  return articles
}

export async function loadWikiText2(ver: string, opts: CorpusOptions): Promise<string[]> {
  const path = await corpusFile('wiki-text-2', wikiText2Source(ver), [`${ver}.txt`, `wiki.${ver}.tokens`, `wikitext-2/wiki.${ver}.tokens`], opts)
  return wikiArticles(readFileSync(path, 'utf8'))
}

// ---------------------------------------------------------------------------------------------------------
// Chinese poems (lmp): column 內容 of {ver}.csv inside {ver}.csv.zip, normalized, poems of >= 24 characters.
export function chinesePoems(csv: string): string[] {
  const [header, ...rows] = parseCsv(csv)
  const col = header?.indexOf('內容') ?? -1
  if (col < 0) throw new LmpError("chinese-poem CSV has no column '內容'")
  return rows.map((r) => normSample(r[col] ?? '')).filter((p) => Array.from(p).length >= 24)
}

export async function loadChinesePoem(ver: string, opts: CorpusOptions): Promise<string[]> {
  const path = await corpusFile('chinese-poem', chinesePoemSource(ver), [`${ver}.csv.zip`, `${ver}.csv`], opts)
  const raw = readFileSync(path)
  const csv = path.endsWith('.csv') ? raw : readZipMember(raw, `${ver}.csv`, path)
  return chinesePoems(csv.toString('utf8'))
}

// ---------------------------------------------------------------------------------------------------------
// WNLI (GLUE), lmp's fourth dataset: WNLI/{train,dev,test}.tsv inside WNLI.zip, cached as the zip itself
// (lmp looked for `wnli.{ver}` but wrote `wnli.{ver}.tsv`, so it downloaded again every time: here the
// cached zip is used whenever its checksum matches). The MD5 is the one torchtext publishes for this URL.
export const WNLI_VERSIONS = ['train', 'dev', 'test']

export const WNLI: Source = {
  rel: 'wnli/WNLI.zip',
  url: 'https://dl.fbaipublicfiles.com/glue/data/WNLI.zip',
  sha256: null,
  md5: 'a1b4bd2861017d302d29e42139657a42',
}

/** Python 3's `\w` (letters, digits, underscore of any script), for lmp's spacing rules below. */
const W = '[\\p{L}\\p{N}_]'
const SPACING: [RegExp, string][] = [
  [new RegExp(`(${W})([,.!?:;"'-])`, 'gu'), '$1 $2'],
  [new RegExp(`(["])(${W})`, 'gu'), '$1 $2'],
  [new RegExp(`(${W})('${W})\\s+`, 'gu'), '$1 $2 '],
]

/** lmp's WNLI spacing: punctuation split from the word before it, `"` from the word after, `'s` kept apart. */
export function wnliSpacing(sentence: string): string {
  return SPACING.reduce((s, [re, to]) => s.replace(re, to), sentence)
}

/**
 * lmp's WNLI samples: the normalized `sentence1` column, then the `sentence2` column, each sentence one
 * sample after lmp's spacing. Fields are split on tabs (no CSV quoting: the sentences hold bare quotes).
 */
export function wnliSamples(tsv: string): string[] {
  const [header, ...rows] = tsv.replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l !== '').map((l) => l.split('\t'))
  const col = (name: string) => {
    const i = header?.indexOf(name) ?? -1
    if (i < 0) throw new LmpError(`WNLI file has no column '${name}' (columns: ${header?.join(', ')})`)
    return i
  }
  const s1 = col('sentence1')
  const s2 = col('sentence2')
  const column = (i: number) => rows.map((r) => wnliSpacing(normSample(r[i] ?? '')))
  return [...column(s1), ...column(s2)]
}

/** `src`: the file to fetch (tests pass a copy's checksum); the zip, or a .tsv given as --data-path. */
export async function loadWnli(ver: string, opts: CorpusOptions, src: Source = WNLI): Promise<string[]> {
  const path = await corpusFile('WNLI', src, ['WNLI.zip', `${ver}.tsv`, `WNLI/${ver}.tsv`], opts)
  const raw = readFileSync(path)
  const tsv = path.endsWith('.tsv') ? raw : readZipMember(raw, `WNLI/${ver}.tsv`, path)
  return wnliSamples(tsv.toString('utf8'))
}

// ---------------------------------------------------------------------------------------------------------
// Any local text: a file, or a folder holding {ver}.txt (else, for train, every *.txt in it, by name).
// One sample per line, or per blank-line-separated block; samples are normalized and empty ones dropped.
export const TEXT_VERSIONS = ['train', 'valid', 'test']

export function textSamples(text: string, sampleBy: 'line' | 'block' = 'line'): string[] {
  const pieces = sampleBy === 'block' ? text.split(/\n[ \t\r]*\n/) : text.split('\n')
  return pieces.map(normSample).filter((s) => s !== '')
}

export function textFiles(dataPath: string | undefined, ver: string): string[] {
  if (dataPath === undefined) throw new LmpError("dataset 'text' needs --data-path FILE_OR_FOLDER")
  const p = resolve(dataPath)
  if (isFile(p)) return [p]
  if (!isDir(p)) throw new LmpError(`--data-path ${dataPath} does not exist`)
  if (isFile(join(p, `${ver}.txt`))) return [join(p, `${ver}.txt`)]
  const all = readdirSync(p).filter((f) => f.endsWith('.txt') && isFile(join(p, f))).sort()
  if (ver !== 'train' || all.length === 0) throw new LmpError(`--data-path ${dataPath} has no ${ver}.txt${ver === 'train' ? ' nor any *.txt' : ''}`)
  return all.map((f) => join(p, f))
}

/** The files of `text`, raw and concatenated (nanoGPT's character task). */
export async function loadRawTextFiles(ver: string, opts: CorpusOptions): Promise<string> {
  return textFiles(opts.dataPath, ver).map((f) => readFileSync(f, 'utf8')).join('')
}

export async function loadText(ver: string, opts: CorpusOptions): Promise<string[]> {
  return textFiles(opts.dataPath, ver).flatMap((f) => textSamples(readFileSync(f, 'utf8'), opts.sampleBy))
}
