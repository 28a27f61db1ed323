// `lmp tknz-txt`: tokenize a text with an experiment's tokenizer and print the tokens (lmp's tknz_txt prints
// Python's list repr; --json prints JSON).
import type { Command } from './index.ts'
import { LmpError } from '../errors.ts'
import { expDir, lmpFiles } from '../exp.ts'
import { existsSync } from 'node:fs'
import { loadTokenizer } from '../tokenizer/io.ts'
import { tokenPieces } from '../tokenizer/pieces.ts'
import { readTxtOption } from './io.ts'

/** Python's repr() of a str (quotes chosen as Python does, non-printable characters escaped). */
export function pyRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'"
  let out = q
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    if (ch === '\\') out += '\\\\'
    else if (ch === q) out += '\\' + q
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      out += cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : cp < 0x10000 ? `\\u${cp.toString(16).padStart(4, '0')}` : `\\U${cp.toString(16).padStart(8, '0')}`
    } else out += ch
  }
  return out + q
}

export const command: Command = {
  spec: {
    name: 'tknz-txt',
    summary: "Tokenize a text with an experiment's tokenizer and print the tokens.",
    options: {
      'exp-name': { type: 'string', default: 'my_tknzr_exp', help: 'experiment whose tokenizer to use (lmp train-tknzr, or a model experiment)' },
      seed: { type: 'int', default: 42, help: 'random seed (kept for lmp compatibility)' },
      txt: { type: 'string', default: '', help: "text to tokenize ('-': read it from standard input)" },
      json: { type: 'boolean', default: false, help: "print {tokens, ids} as JSON: each token's own text and its id, BOS and EOS left out" },
    },
  },
  async run({ options: o }) {
    const path = lmpFiles(expDir(o.expName)).tokenizer
    if (!existsSync(path)) throw new LmpError(`unknown tokenizer experiment '${o.expName}' (no ${path}; run lmp train-tknzr first)`)
    const txt = readTxtOption(o.txt)
    const tk = loadTokenizer(path)
    if (o.json) {
      // tokens[i] is the text ids[i] stands for (a space is ' ', a gpt2 piece 'Ġworld' is ' world'); joined,
      // the tokens give the normalized text. BOS and EOS, which every encoding adds, are left out.
      const ids = tk.enc(txt)
      console.log(JSON.stringify({ tokens: tokenPieces(tk, ids).slice(1, -1), ids: ids.slice(1, -1) }))
    } else {
      console.log(`[${tk.tknz(txt).map(pyRepr).join(', ')}]`)
    }
  },
}
