// Datasets with lmp's names and versions, and context windows over them.
// `demo` is generated in code (browser-safe); the others read files and download (node only), so they are
// imported only when asked for.
import { LmpError } from '../errors.ts'
import { DEMO_VERSIONS, demoSamples } from './demo.ts'

export { lmWindows, countTokens, type Window } from './windows.ts'

// The versions of chinese-poem are its 27 dynasties (lmp's list, corpora.ts); kept here to stay node-free.
const CHINESE_POEM_VERSIONS = [
  '元', '元末明初', '先秦', '南北朝', '唐', '唐末宋初', '宋', '宋末元初', '宋末金初', '明',
  '明末清初', '民國末當代初', '清', '清末民國初', '清末近現代初', '漢', '當代', '秦', '近現代',
  '近現代末當代初', '遼', '金', '金末元初', '隋', '隋末唐初', '魏晉', '魏晉末南北朝初',
]

export const DATASETS: Record<string, { versions: string[]; defaultVersion: string }> = {
  demo: { versions: [...DEMO_VERSIONS], defaultVersion: 'train' },
  'tiny-shakespeare': { versions: ['train', 'valid', 'test'], defaultVersion: 'train' },
  'wiki-text-2': { versions: ['train', 'valid', 'test'], defaultVersion: 'train' },
  'chinese-poem': { versions: CHINESE_POEM_VERSIONS, defaultVersion: '唐' },
  /** GLUE's WNLI, one sample per sentence (lmp's) */
  WNLI: { versions: ['train', 'dev', 'test'], defaultVersion: 'train' },
  /** any local text file or folder: needs dataPath */
  text: { versions: ['train', 'valid', 'test'], defaultVersion: 'train' },
}

export interface LoadOptions {
  /** a local file or folder to read instead of the cache/download (`--data-path`) */
  dataPath?: string
  /** the download cache; default LMP_DATA_DIR, else ./data */
  dataDir?: string
  /** a base URL laid out like the cache, to download from instead of the public sources (LMP_DATA_MIRROR) */
  mirror?: string
  /** `text` only: one sample per line (default) or per blank-line-separated block */
  sampleBy?: 'line' | 'block'
}

function checkedVersion(name: string, ver?: string): string {
  const info = DATASETS[name]
  if (!info) throw new LmpError(`unknown dataset '${name}': must be one of ${Object.keys(DATASETS).join(', ')}`)
  const v = ver ?? info.defaultVersion
  if (!info.versions.includes(v)) {
    throw new LmpError(`unknown version '${v}' of dataset '${name}': must be one of ${info.versions.join(', ')}`)
  }
  return v
}

/** The samples of one version of a dataset; unknown name/version -> LmpError listing the valid ones. */
export async function loadDataset(name: string, ver?: string, opts: LoadOptions = {}): Promise<string[]> {
  const v = checkedVersion(name, ver)
  if (name === 'demo') return demoSamples(v)
  const corpora = await import('./corpora.ts')
  switch (name) {
    case 'tiny-shakespeare': return corpora.loadTinyShakespeare(v, opts)
    case 'wiki-text-2': return corpora.loadWikiText2(v, opts)
    case 'chinese-poem': return corpora.loadChinesePoem(v, opts)
    case 'WNLI': return corpora.loadWnli(v, opts)
    default: return corpora.loadText(v, opts)
  }
}

/**
 * One version of a dataset as a single raw text, for nanoGPT's character task (`--task nanogpt`):
 * tiny-shakespeare's split and `text`'s files exactly as stored (newlines kept, nothing normalized);
 * the other datasets, which only exist as samples, as their samples joined by newlines.
 */
export async function loadRawText(name: string, ver?: string, opts: LoadOptions = {}): Promise<string> {
  const v = checkedVersion(name, ver)
  if (name === 'tiny-shakespeare') return (await import('./corpora.ts')).loadTinyShakespeareRaw(v, opts)
  if (name === 'text') return (await import('./corpora.ts')).loadRawTextFiles(v, opts)
  return (await loadDataset(name, v, opts)).join('\n')
}
