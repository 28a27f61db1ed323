// lmp's WsTknzr: split on whitespace runs and around special tokens; detokenize joins with one space.
import { VocabTokenizer } from './base.ts'
import { splitWords } from './words.ts'

export class WhitespaceTokenizer extends VocabTokenizer {
  readonly name = 'whitespace' as const

  tknz(txt: string): string[] {
    return splitWords(this.norm(txt))
  }

  dtknz(tks: string[]): string {
    return this.norm(tks.join(' '))
  }
}
