// lmp's CharTknzr: one token per code point, special tokens recognised inside the text.
import { VocabTokenizer } from './base.ts'
import { SPECIAL_TOKENS } from './special.ts'

export class CharTokenizer extends VocabTokenizer {
  readonly name = 'character' as const

  tknz(txt: string): string[] {
    const s = this.norm(txt)
    if (!s.includes('<')) return Array.from(s) // no special token possible: one token per code point
    const tks: string[] = []
    let i = 0
    while (i < s.length) {
      const sp = s.charCodeAt(i) === 60 /* '<' */ ? SPECIAL_TOKENS.find((tk) => s.startsWith(tk, i)) : undefined
      const tk = sp ?? String.fromCodePoint(s.codePointAt(i)!)
      tks.push(tk)
      i += tk.length
    }
    return tks
  }

  dtknz(tks: string[]): string {
    return this.norm(tks.join(''))
  }
}
