import t from 'tap'
import { readdirSync, writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createTokenizer } from '../../src/tokenizer/index.ts'
import { loadTokenizer, saveTokenizer } from '../../src/tokenizer/io.ts'
import { throwsLmp } from './helpers.ts'

t.test('save and load tokenizer.json, for every tokenizer', async (t) => {
  const dir = t.testdir()
  for (const name of ['character', 'whitespace', 'BPE']) {
    const tk = createTokenizer(name, { isUncased: true, nMerge: 20 })
    tk.buildVocab(['Hello world, hello there', 'a cat sat'])
    const path = join(dir, name, 'tokenizer.json')
    saveTokenizer(path, tk)
    const back = loadTokenizer(path)
    t.equal(back.name, name)
    t.same(back.toJSON(), tk.toJSON())
    t.same(back.enc('hello cat world'), tk.enc('hello cat world'))
    t.same(readdirSync(join(dir, name)), ['tokenizer.json'], 'no temp file left behind')
  }
  const path = join(dir, 'character', 'tokenizer.json')
  JSON.parse(readFileSync(path, 'utf8'))
  saveTokenizer(path, createTokenizer('character'))
  t.equal(loadTokenizer(path).vocabSize, 4, 'overwrites')
})

t.test('missing or corrupt files give one-line errors naming the file', async (t) => {
  const dir = t.testdir()
  const missing = join(dir, 'nope.json')
  throwsLmp(t, () => loadTokenizer(missing), new RegExp(`not found: ${missing}`))
  const corrupt = join(dir, 'corrupt.json')
  writeFileSync(corrupt, '{"tknzr_name": "charac')
  throwsLmp(t, () => loadTokenizer(corrupt), new RegExp(`corrupt tokenizer file ${corrupt}: not valid JSON`))
  const wrong = join(dir, 'wrong.json')
  writeFileSync(wrong, JSON.stringify({ tknzr_name: 'character', tk2id: { a: 0 } }))
  throwsLmp(t, () => loadTokenizer(wrong), /corrupt tokenizer file .*wrong.json: malformed/)
  throwsLmp(t, () => loadTokenizer(dir), /cannot read tokenizer file/)
})
