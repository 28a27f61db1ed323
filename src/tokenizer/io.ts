// Saving and loading lmp's tokenizer JSON (exp/NAME/lmp_tokenizer.json; node only).
import { readFileSync, renameSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createRequire } from 'node:module'
import { LmpError } from '../errors.ts'
import { tokenizerFromJSON, createTokenizer, type Tokenizer } from './index.ts'
import { GPT2_PACKAGE, GPT2_RANKS_MODULE, registerGpt2 } from './gpt2.ts'

/** Node's synchronous path to the gpt2 tokenizer (the browser uses `await loadGpt2()`). */
export function loadGpt2Sync(): void {
  try {
    createTokenizer('gpt2')
    return
  } catch { /* not registered yet */ }
  let mod: unknown
  try {
    mod = createRequire(import.meta.url)(GPT2_RANKS_MODULE)
  } catch (err) {
    throw new LmpError(`the gpt2 tokenizer needs the npm package '${GPT2_PACKAGE}' (npm install ${GPT2_PACKAGE}): ${(err as Error).message.split('\n')[0]}`)
  }
  registerGpt2(mod)
}

/** Atomic write: a temp file beside the target, then rename, so a crash never leaves half a tokenizer file. */
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
  if ((json as { tknzr_name?: unknown })?.tknzr_name === 'gpt2') loadGpt2Sync()
  try {
    return tokenizerFromJSON(json)
  } catch (err) {
    throw new LmpError(`corrupt tokenizer file ${path}: ${(err as Error).message}`)
  }
}
