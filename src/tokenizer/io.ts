// Saving and loading tokenizer.json (node only).
import { readFileSync, renameSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { LmpError } from '../errors.ts'
import { tokenizerFromJSON, type Tokenizer } from './index.ts'

/** Atomic write: a temp file beside the target, then rename, so a crash never leaves half a tokenizer.json. */
export function saveTokenizer(path: string, tk: Tokenizer): void {
  mkdirSync(dirname(path), { recursive: true })
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`
  try {
    writeFileSync(tmp, JSON.stringify(tk.toJSON()) + '\n')
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

export function loadTokenizer(path: string): Tokenizer {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new LmpError(code === 'ENOENT' ? `tokenizer file not found: ${path}` : `cannot read tokenizer file ${path}: ${code}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new LmpError(`corrupt tokenizer file ${path}: not valid JSON`)
  }
  try {
    return tokenizerFromJSON(json)
  } catch (err) {
    throw new LmpError(`corrupt tokenizer file ${path}: ${(err as Error).message}`)
  }
}
