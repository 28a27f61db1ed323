// lmp's CharTknzr: one token per code point, special tokens recognised inside the text.
// With isRaw (nanoGPT's character task), the text is taken as it is: no normalization (newlines and every
// other character are tokens) and no special tokens recognised inside it.
import { VocabTokenizer, type TokenizerOptions } from './base.ts'
import { SPECIAL_TOKENS } from './special.ts'
import { LmpError } from '../errors.ts'

export class CharTokenizer extends VocabTokenizer {
  readonly name = 'character' as const
  readonly isRaw: boolean

  constructor(opts: TokenizerOptions & { isRaw?: boolean } = {}) {
    super(opts)
    if (opts.isRaw !== undefined && typeof opts.isRaw !== 'boolean') throw new LmpError('is_raw must be a boolean')
    this.isRaw = opts.isRaw ?? false
    if (this.isRaw && this.isUncased) throw new LmpError('a raw character tokenizer cannot be uncased')
  }

  norm(txt: string): string {
    return this.isRaw ? txt : super.norm(txt)
  }

  tknz(txt: string): string[] {
    const s = this.norm(txt)
    if (this.isRaw || !s.includes('<')) return Array.from(s) // no special token possible: one token per code point
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

  toJSON(): object {
    return this.isRaw ? { ...super.toJSON(), is_raw: true } : super.toJSON()
  }
}
