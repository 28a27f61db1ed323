// Datasets with lmp's names and versions, and context windows over them.
import { LmpError } from '../errors.ts'
import { DEMO_VERSIONS, demoSamples } from './demo.ts'

export { lmWindows, countTokens, type Window } from './windows.ts'

export const DATASETS: Record<string, { versions: string[]; defaultVersion: string }> = {
  demo: { versions: [...DEMO_VERSIONS], defaultVersion: 'train' },
}

export interface LoadOptions {
  /** a local text file or folder (or, for the downloadable corpora, a folder holding their files) */
  dataPath?: string
}

/** The samples of one version of a dataset; unknown name/version -> LmpError listing the valid ones. */
export async function loadDataset(name: string, ver?: string, opts: LoadOptions = {}): Promise<string[]> {
  const info = DATASETS[name]
  if (!info) throw new LmpError(`unknown dataset '${name}': must be one of ${Object.keys(DATASETS).join(', ')}`)
  const v = ver ?? info.defaultVersion
  if (!info.versions.includes(v)) {
    throw new LmpError(`unknown version '${v}' of dataset '${name}': must be one of ${info.versions.join(', ')}`)
  }
  if (name === 'demo') return demoSamples(v)
  throw new LmpError(`dataset '${name}' is not available yet`)
}
